% rebase('base.tpl', title=title, session=session)
<h1>Software</h1>
<section class="card">
  <h2>Software modules</h2>
% if modules:
  <table class="list">
    <thead><tr><th scope="col">Module</th><th scope="col">Version</th><th scope="col">Type</th><th scope="col">State</th></tr></thead>
    <tbody>
% for module in modules:
      <tr><td><a href="{{ui('/software/modules/%d' % module['id'])}}">{{module['name']}}</a></td>
        <td>{{module['version']}}</td><td>{{module['typeName']}}</td>
        <td>{{'deleted' if module['deleted'] else ('locked' if module['locked'] else '')}}</td></tr>
% end
    </tbody>
  </table>
% else:
  <p>No software modules yet.</p>
% end
  <form id="new-module" method="post" action="{{ui('/software/modules')}}">
    <h3>New module</h3>
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <label for="module-type">Type</label>
    <select id="module-type" name="type">
% for module_type in module_types:
      <option value="{{module_type['key']}}">{{module_type['name']}}</option>
% end
    </select>
    <label for="module-name">Name</label><input id="module-name" name="name" required>
    <label for="module-version">Version</label><input id="module-version" name="version" required>
    <label for="module-description">Description (optional)</label>
    <input id="module-description" name="description">
    <button type="submit">Create module</button>
  </form>
</section>
<section class="card">
  <h2>Distribution sets</h2>
% if sets:
  <table class="list">
    <thead><tr><th scope="col">Set</th><th scope="col">Version</th><th scope="col">Modules</th><th scope="col">State</th><th scope="col"></th></tr></thead>
    <tbody>
% for ds in sets:
      <tr><td>{{ds['name']}}</td><td>{{ds['version']}}</td>
        <td>{{', '.join('%s %s' % (m['name'], m['version']) for m in ds['modules']) or '—'}}</td>
        <td>{{'deleted' if ds['deleted'] else ', '.join(word for word, on in (('complete', ds['complete']), ('incomplete', not ds['complete']), ('locked', ds['locked'])) if on)}}</td>
        <td>
% if not ds['deleted']:
          <form class="inline" method="post" action="{{ui('/software/sets/%d/delete' % ds['id'])}}">
            <input type="hidden" name="csrf" value="{{session.csrf}}">
            <button type="submit" aria-label="Delete set {{ds['name']}} {{ds['version']}}">Delete</button>
          </form>
% end
        </td></tr>
% end
    </tbody>
  </table>
% else:
  <p>No distribution sets yet.</p>
% end
  <form id="new-set" method="post" action="{{ui('/software/sets')}}">
    <h3>New set from modules</h3>
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <label for="set-type">Type</label>
    <select id="set-type" name="type">
% for set_type in set_types:
      <option value="{{set_type['key']}}">{{set_type['name']}}</option>
% end
    </select>
    <label for="set-name">Name</label><input id="set-name" name="name" required>
    <label for="set-version">Version</label><input id="set-version" name="version" required>
    <fieldset><legend>Modules</legend>
% for module in modules:
%   if not module['deleted']:
      <label class="check"><input type="checkbox" name="module" value="{{module['id']}}">
        {{module['name']}} {{module['version']}} ({{module['typeName']}})</label>
%   end
% end
    </fieldset>
    <button type="submit">Create set</button>
  </form>
</section>
