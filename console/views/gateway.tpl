% rebase('base.tpl', title=title, session=session)
% upstream, outbox, cache = gateway['upstream'], gateway['outbox'], gateway['cache']
<h1>Gateway</h1>
<section class="card" id="upstream">
  <h2>Upstream</h2>
  <dl>
    <dt>Server</dt><dd>{{upstream['url']}} (tenant {{upstream['tenant']}}, {{upstream['auth'].replace('_', ' ')}})</dd>
    <dt>State</dt><dd>{{'answering' if upstream['up'] else 'not answering'}}</dd>
    <dt>Last success</dt><dd>{{when(upstream['lastSuccessAt'])}}</dd>
    <dt>Last error</dt><dd>{{upstream['lastError'] or 'none'}}{{(' at ' + when(upstream['lastErrorAt'])) if upstream['lastErrorAt'] else ''}}</dd>
    <dt>Requests</dt><dd>{{upstream['requests']}} ({{size(upstream['bytesReceived'])}} received, {{upstream['errors']}} failed)</dd>
    <dt>Devices relayed</dt><dd>{{gateway['devices']}}</dd>
  </dl>
</section>
<section class="card" id="outbox">
  <h2>Reports waiting for upstream: {{outbox['depth']}}</h2>
  <p>{{outbox['delivered']}} delivered since the start.</p>
% if outbox['pending']:
  <table>
    <thead><tr><th>Device</th><th>Report</th><th>Made</th><th>Attempts</th><th>Last error</th></tr></thead>
    <tbody>
% for item in outbox['pending']:
      <tr><td>{{item['controllerId']}}</td><td>{{item['method']}} {{item['resource']}}</td>
        <td>{{when(item['createdAt'])}}</td><td>{{item['attempts']}}</td><td>{{item['lastError'] or ''}}</td></tr>
% end
    </tbody>
  </table>
% end
</section>
<section class="card" id="cache">
  <h2>Artifact cache: {{size(cache['size_bytes'])}} of {{size(cache['max_bytes'])}}</h2>
  <p>{{cache['entries']}} artifacts; {{cache['hits']}} hits, {{cache['misses']}} misses;
    {{size(cache['bytes_from_upstream'])}} from upstream, {{size(cache['bytes_served'])}} served.</p>
% if cache['contents']:
  <table>
    <thead><tr><th>SHA-1</th><th>Size</th><th>State</th><th>Last used</th><th>Pinned</th></tr></thead>
    <tbody>
% for entry in cache['contents']:
      <tr><td><code>{{entry['sha1']}}</code></td><td>{{size(entry['size'])}}</td>
        <td>{{entry.get('state', 'complete' if entry['complete'] else 'filling')}}</td>
        <td>{{when(entry['last_used_ms'])}}</td><td>{{'yes' if entry['pinned'] else 'no'}}</td></tr>
% end
    </tbody>
  </table>
% end
</section>
