<section class="card">
  <h2>Targets by update status <small>({{total}} in all)</small></h2>
  <svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" role="img"
       aria-label="{{', '.join('%s: %d' % (s, n) for s, n in by_status)}}">
% x = 0.0
% for status, count in by_status:
%   if total and count:
%     width = 100.0 * count / total
    <rect class="s-{{status}}" x="{{'%.3f' % x}}" y="0" width="{{'%.3f' % width}}" height="6"></rect>
%     x += width
%   end
% end
  </svg>
  <ul class="legend">
% for status, count in by_status:
    <li><span class="swatch s-{{status}}"></span>
      <a href="{{ui('/targets', status=status)}}">{{status.replace('_', ' ')}}</a>
      <strong data-status="{{status}}">{{count}}</strong></li>
% end
  </ul>
</section>
<section class="card">
  <h2>Running rollouts</h2>
% if rollouts:
%   for rollout, groups in rollouts:
  <div class="rollout" data-rollout="{{rollout['name']}}">
    <h3><a href="{{ui('/rollouts/%d' % rollout['id'])}}">{{rollout['name']}}</a>
      <span class="tag r-{{rollout['status']}}">{{rollout['status']}}</span></h3>
%     for group in groups:
    <div class="group" data-group="{{group['name']}}" data-group-status="{{group['status']}}">
      <small>{{group['name']}} · {{group['status']}}</small>
%       include('progress.tpl', figures=group['totalTargetsPerStatus'], label=rollout['name'] + ', ' + group['name'])
    </div>
%     end
  </div>
%   end
%   if rollouts_total > len(rollouts):
  <p><a href="{{ui('/rollouts')}}">All {{rollouts_total}} of them</a></p>
%   end
% else:
  <p>No rollout is running or paused. <a href="{{ui('/rollouts')}}">Rollouts</a></p>
% end
</section>
<section class="card">
  <h2>Not seen for {{missed}} polling intervals <small>(polling time {{polling}})</small></h2>
% if unseen['content']:
  <table>
    <thead><tr><th scope="col">Target</th><th scope="col">Status</th><th scope="col">Last seen</th></tr></thead>
    <tbody>
% for target in unseen['content']:
      <tr><td><a href="{{ui('/targets/' + segment(target['controllerId']))}}">{{target['controllerId']}}</a></td>
        <td><span class="tag s-{{target['updateStatus']}}">{{target['updateStatus']}}</span></td>
        <td>{{when(target.get('lastControllerRequestAt'))}}</td></tr>
% end
    </tbody>
  </table>
% if unseen['total'] > len(unseen['content']):
  <p><a href="{{unseen_list}}">All {{unseen['total']}} of them</a></p>
% end
% else:
  <p>Every device that has polled did so recently.</p>
% end
</section>
<section class="card">
  <h2>Latest actions</h2>
% if actions:
  <table>
    <thead><tr><th scope="col" class="wide-only">#</th><th scope="col">Target</th><th scope="col">Set</th><th scope="col">Status</th><th scope="col" class="wide-only">Changed</th></tr></thead>
    <tbody>
% for action in actions:
      <tr><td class="wide-only">{{action['id']}}</td>
        <td><a href="{{ui('/targets/' + segment(action['controllerId']))}}">{{action['controllerId']}}</a></td>
        <td>{{action['setName']}}</td>
        <td><span class="tag a-{{action['status']}}" data-action-status="{{action['status']}}">{{action['status']}}</span></td>
        <td class="wide-only">{{when(action.get('lastModifiedAt'))}}</td></tr>
% end
    </tbody>
  </table>
% else:
  <p>No actions yet.</p>
% end
</section>
