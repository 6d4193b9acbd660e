% rebase('base.tpl', title=title, session=session)
<h1>{{target.get('name') or target['controllerId']}}
  <span class="tag s-{{target['updateStatus']}}">{{target['updateStatus'].replace('_', ' ')}}</span></h1>
<section class="card">
  <dl class="facts">
    <dt>Controller id</dt><dd>{{target['controllerId']}}</dd>
    <dt>Last seen</dt><dd>{{when(target.get('lastControllerRequestAt'))}}</dd>
    <dt>Address</dt><dd>{{target.get('address') or '—'}}</dd>
    <dt>Security token</dt><dd><code>{{target.get('securityToken', '')}}</code></dd>
    <dt>Assigned set</dt><dd>{{'%s %s' % (assigned['name'], assigned['version']) if assigned else '—'}}</dd>
    <dt>Installed set</dt><dd>{{'%s %s' % (installed['name'], installed['version']) if installed else '—'}}</dd>
  </dl>
</section>
<section class="card">
  <h2>Attributes</h2>
% if attributes:
  <dl class="facts">
% for key in sorted(attributes):
    <dt>{{key}}</dt><dd>{{attributes[key]}}</dd>
% end
  </dl>
% else:
  <p>The device has reported none.</p>
% end
</section>
<section class="card">
  <h2>Assign a distribution set</h2>
% if sets:
  <form id="assign" method="post" action="{{ui('/targets/' + segment(target['controllerId']) + '/assign')}}">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <label for="assign-set">Distribution set</label>
    <select id="assign-set" name="set" required>
% for ds in sets:
      <option value="{{ds['id']}}">{{ds['name']}} {{ds['version']}}</option>
% end
    </select>
    <label for="assign-type">Type</label>
    <select id="assign-type" name="type">
      <option value="forced">forced</option><option value="soft">soft</option>
      <option value="downloadonly">download only</option>
    </select>
    <button type="submit">Assign</button>
  </form>
% else:
  <p>No complete distribution set to assign; make one under <a href="{{ui('/software')}}">Software</a>.</p>
% end
</section>
<section class="card">
  <h2>Tags</h2>
  <ul class="tags">
% for tag in target_tags:
    <li><span class="tag">{{tag['name']}}</span>
      <form class="inline" method="post" action="{{ui('/targets/%s/tags/%d/remove' % (segment(target['controllerId']), tag['id']))}}">
        <input type="hidden" name="csrf" value="{{session.csrf}}">
        <button type="submit" aria-label="Remove tag {{tag['name']}}">×</button>
      </form></li>
% end
  </ul>
  <form id="add-tag" method="post" action="{{ui('/targets/' + segment(target['controllerId']) + '/tags')}}">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <label for="tag-name">Add a tag (an existing one, or a new name)</label>
    <input id="tag-name" name="tag" list="known-tags" required>
    <datalist id="known-tags">
% for tag in all_tags:
      <option value="{{tag['name']}}">
% end
    </datalist>
    <button type="submit">Add tag</button>
  </form>
</section>
<section class="card" id="actions">
  <h2>Actions <small>({{actions_total}})</small></h2>
% if not actions:
  <p>No actions.</p>
% end
% for action in actions:
  <article class="action" id="action-{{action['id']}}">
    <h3>#{{action['id']}} {{action['setName']}}
      <span class="tag a-{{action['status']}}">{{action['status']}}</span>
      <small>{{action['forceType']}}{{', active' if action['active'] else ''}}</small></h3>
% if action['active']:
    <form class="inline" method="post" action="{{ui('/targets/%s/actions/%d/cancel' % (segment(target['controllerId']), action['id']))}}">
      <input type="hidden" name="csrf" value="{{session.csrf}}">
% if action['status'] == 'canceling':
      <input type="hidden" name="force" value="true">
      <button type="submit" aria-label="Force-quit action {{action['id']}}">Force-quit</button>
% else:
      <button type="submit" aria-label="Cancel action {{action['id']}}">Cancel</button>
% end
    </form>
% end
    <table>
      <thead><tr><th scope="col">Status</th><th scope="col">When</th><th scope="col">Messages</th></tr></thead>
      <tbody>
% for entry in action['history']:
        <tr><td>{{entry['type']}}{{' (%s)' % entry['code'] if entry.get('code') is not None else ''}}</td>
          <td>{{when(entry.get('reportedAt'))}}</td>
          <td>{{'; '.join(entry.get('messages', []))}}</td></tr>
% end
      </tbody>
    </table>
% if action['history_total'] > len(action['history']):
    <p>{{action['history_total'] - len(action['history'])}} older entries are not shown.</p>
% end
  </article>
% end
<nav class="pages" aria-label="Action pages">
% if actions_offset > 0:
  <a rel="prev" href="{{ui('/targets/' + segment(target['controllerId']), actions=max(0, actions_offset - actions_per_page) or None)}}#actions">Newer actions</a>
% end
% if actions_offset + actions_per_page < actions_total:
  <a rel="next" href="{{ui('/targets/' + segment(target['controllerId']), actions=actions_offset + actions_per_page)}}#actions">Older actions</a>
% end
</nav>
</section>
<p><a class="danger" href="{{ui('/targets/' + segment(target['controllerId']) + '/delete')}}">Delete this target…</a></p>
