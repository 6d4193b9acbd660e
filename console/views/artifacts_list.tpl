% if artifacts:
<table class="list">
  <thead><tr><th scope="col">File</th><th scope="col">Size</th><th scope="col">Hashes</th></tr></thead>
  <tbody>
% for artifact in artifacts:
    <tr><td>{{artifact['providedFilename']}}</td><td>{{size(artifact['size'])}}</td>
      <td class="hashes">
        <div>SHA-256 <code>{{artifact['hashes']['sha256']}}</code></div>
        <div>SHA-1 <code>{{artifact['hashes']['sha1']}}</code></div>
        <div>MD5 <code>{{artifact['hashes']['md5']}}</code></div></td></tr>
% end
  </tbody>
</table>
% else:
<p>No artifacts yet.</p>
% end
