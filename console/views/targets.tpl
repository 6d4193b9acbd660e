% rebase('base.tpl', title=title, session=session)
<h1>Targets</h1>
<form id="filter" class="card filters" method="get" action="{{ui('/targets')}}" role="search">
  <div><label for="text">Search id or name</label>
    <input id="text" name="text" value="{{here['text']}}"></div>
  <div><label for="status">Status</label>
    <select id="status" name="status"><option value="">any</option>
% for status in statuses:
      <option value="{{status}}" {{'selected' if here['status'] == status else ''}}>{{status.replace('_', ' ')}}</option>
% end
    </select></div>
  <div><label for="tag">Tag</label>
    <select id="tag" name="tag"><option value="">any</option>
% for tag in all_tags:
      <option value="{{tag['name']}}" {{'selected' if here['tag'] == tag['name'] else ''}}>{{tag['name']}}</option>
% end
    </select></div>
  <div><label for="sort">Sort by</label>
    <select id="sort" name="sort">
% for key, label in sorts.items():
      <option value="{{key}}" {{'selected' if here['sort'] == key else ''}}>{{label}}</option>
% end
    </select></div>
  <div><label for="dir">Order</label>
    <select id="dir" name="dir">
      <option value="asc" {{'selected' if here['dir'] == 'asc' else ''}}>ascending</option>
      <option value="desc" {{'selected' if here['dir'] == 'desc' else ''}}>descending</option>
    </select></div>
  <div class="wide"><label for="rsql">RSQL filter</label>
    <input id="rsql" name="rsql" value="{{here['rsql']}}" placeholder="updateStatus==error;tag==line-2"></div>
  <div><button type="submit">Search</button></div>
</form>
<p>{{found['total']}} target{{'' if found['total'] == 1 else 's'}}
% if found['total']:
 · showing {{offset + 1}}–{{offset + len(found['content'])}}
% end
</p>
% if found['content']:
<table class="list">
  <thead><tr><th scope="col">Controller id</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Last seen</th></tr></thead>
  <tbody>
% for target in found['content']:
    <tr><td><a href="{{ui('/targets/' + segment(target['controllerId']))}}">{{target['controllerId']}}</a></td>
      <td>{{target.get('name', '')}}</td>
      <td><span class="tag s-{{target['updateStatus']}}">{{target['updateStatus'].replace('_', ' ')}}</span></td>
      <td>{{when(target.get('lastControllerRequestAt'))}}</td></tr>
% end
  </tbody>
</table>
% end
<nav class="pages" aria-label="Pages">
% if offset > 0:
  <a rel="prev" href="{{ui('/targets', offset=max(0, offset - page_size), **here)}}">Previous</a>
% end
% if offset + page_size < found['total']:
  <a rel="next" href="{{ui('/targets', offset=offset + page_size, **here)}}">Next</a>
% end
</nav>
<form id="new-target" class="card" method="post" action="{{ui('/targets')}}">
  <h2>New target</h2>
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <label for="new-id">Controller id</label>
  <input id="new-id" name="controllerId" required>
  <label for="new-name">Name (optional)</label>
  <input id="new-name" name="name">
  <button type="submit">Create target</button>
</form>
