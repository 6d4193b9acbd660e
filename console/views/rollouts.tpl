% rebase('base.tpl', title=title, session=session)
<h1>Rollouts</h1>
<p>{{found['total']}} rollout{{'' if found['total'] == 1 else 's'}}
% if found['total']:
 · showing {{offset + 1}}–{{offset + len(found['content'])}}, newest first
% end
</p>
% if found['content']:
<table class="list rollouts">
  <thead><tr><th scope="col">Rollout</th><th scope="col">Status</th><th scope="col" class="wide-only">Set</th><th scope="col" class="wide-only">Groups</th><th scope="col" class="wide-only">Targets</th><th scope="col">Done</th><th scope="col">Errors</th><th scope="col" class="wide-only">Progress</th></tr></thead>
  <tbody>
% for rollout in found['content']:
%   figures = rollout['totalTargetsPerStatus']
    <tr><td><a href="{{ui('/rollouts/%d' % rollout['id'])}}">{{rollout['name']}}</a></td>
      <td><span class="tag r-{{rollout['status']}}" data-rollout-status="{{rollout['status']}}">{{rollout['status'].replace('_', ' ')}}</span></td>
      <td class="wide-only">{{rollout['_links']['distributionset']['name']}}</td>
      <td class="wide-only">{{rollout['totalGroups']}}</td>
      <td class="wide-only">{{rollout['totalTargets']}}</td>
      <td>{{figures['finished']}}/{{rollout['totalTargets']}}</td>
      <td>{{figures['error']}}</td>
      <td class="wide-only bar-cell">
%   include('progress.tpl', figures=figures, label=rollout['name'], counts=False)
      </td></tr>
% end
  </tbody>
</table>
% end
<nav class="pages" aria-label="Pages">
% if offset > 0:
  <a rel="prev" href="{{ui('/rollouts', offset=max(0, offset - page_size))}}">Previous</a>
% end
% if offset + page_size < found['total']:
  <a rel="next" href="{{ui('/rollouts', offset=offset + page_size)}}">Next</a>
% end
</nav>
<form id="new-rollout" class="card" method="post" action="{{ui('/rollouts')}}">
  <h2>New rollout</h2>
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <label for="rollout-name">Name</label>
  <input id="rollout-name" name="name" required maxlength="128">
  <label for="rollout-description">Description (optional)</label>
  <input id="rollout-description" name="description" maxlength="512">
% if sets:
  <label for="rollout-set">Distribution set</label>
  <select id="rollout-set" name="set" required>
%   for ds in sets:
    <option value="{{ds['id']}}">{{ds['name']}} {{ds['version']}}</option>
%   end
  </select>
% else:
  <p>No complete distribution set to roll out; make one under <a href="{{ui('/software')}}">Software</a>.</p>
% end
  <fieldset><legend>Targets: a query, or a saved filter</legend>
    <label for="rollout-query">Target query (RSQL)</label>
    <input id="rollout-query" name="query" maxlength="1024" placeholder="controllerId==board-*">
    <label for="rollout-filter">Saved target filter</label>
    <select id="rollout-filter" name="filter"><option value="">none: use the query</option>
% for saved in saved_filters:
      <option value="{{saved['id']}}">{{saved['name']}} ({{saved['query']}})</option>
% end
    </select>
  </fieldset>
  <fieldset><legend>Groups: a number of equal groups, or percentages</legend>
    <label for="rollout-groups">Number of equal groups</label>
    <input id="rollout-groups" name="groups" inputmode="numeric" placeholder="1">
    <label for="rollout-percentages">Or each group's percentage of the targets left</label>
    <input id="rollout-percentages" name="percentages" placeholder="10, 40, 100">
  </fieldset>
  <label for="rollout-success">Next group once this percentage of a group finished</label>
  <input id="rollout-success" name="successThreshold" inputmode="numeric" placeholder="50">
  <label for="rollout-error">Pause once more than this percentage of a group failed</label>
  <input id="rollout-error" name="errorThreshold" inputmode="numeric" placeholder="50">
  <label for="rollout-type">Action type</label>
  <select id="rollout-type" name="type">
% for value, label in action_types:
    <option value="{{value}}">{{label}}</option>
% end
  </select>
  <label for="rollout-start-at">Starts by itself at (UTC, optional)</label>
  <input id="rollout-start-at" name="startAt" type="datetime-local">
% if flow:
  <label class="check"><input type="checkbox" name="confirmationRequired" value="true" checked>
    Devices must confirm before they install</label>
% end
  <button type="submit">Create rollout</button>
</form>
