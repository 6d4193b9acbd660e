% rebase('base.tpl', title=title, session=session)
<h1>{{module['name']}} {{module['version']}} <small>{{module['typeName']}}</small></h1>
% if module.get('description'):
<p>{{module['description']}}</p>
% end
<section class="card">
  <h2>Artifacts</h2>
  <div id="artifacts" data-refresh="{{ui('/fragment/modules/%d/artifacts' % module['id'])}}">
% include('artifacts_list.tpl')
  </div>
% if not module['deleted']:
  <form id="upload" method="post" enctype="multipart/form-data" data-upload
        action="{{ui('/software/modules/%d/artifacts' % module['id'], csrf=session.csrf)}}">
    <label for="file">Upload a file</label>
    <input id="file" name="file" type="file" required>
    <button type="submit">Upload</button>
    <progress hidden max="100" value="0" aria-label="Upload progress"></progress>
    <output aria-live="polite"></output>
  </form>
% end
</section>
% if not module['deleted']:
<form id="delete-module" method="post" action="{{ui('/software/modules/%d/delete' % module['id'])}}">
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <button class="danger" type="submit">Delete module</button>
</form>
% end
<p><a href="{{ui('/software')}}">All software</a></p>
