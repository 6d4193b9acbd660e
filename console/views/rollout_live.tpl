% figures = rollout['totalTargetsPerStatus']
<section class="card">
  <dl class="facts">
    <dt>Status</dt><dd><span class="tag r-{{rollout['status']}}" data-rollout-status="{{rollout['status']}}">{{rollout['status'].replace('_', ' ')}}</span></dd>
    <dt>Distribution set</dt><dd>{{set_name}}</dd>
    <dt>Target query</dt><dd><code>{{rollout['targetFilterQuery']}}</code></dd>
% if rollout.get('description'):
    <dt>Description</dt><dd>{{rollout['description']}}</dd>
% end
    <dt>Action type</dt><dd>{{rollout.get('type') or '—'}}</dd>
    <dt>Starts by itself</dt><dd>{{when(rollout['startAt']) if rollout.get('startAt') else '—'}}</dd>
% if rollout.get('confirmationRequired') is not None:
    <dt>Confirmation</dt><dd>{{'required' if rollout['confirmationRequired'] else 'not required'}}</dd>
% end
% if rollout.get('approveDecidedBy'):
    <dt>Decided by</dt><dd>{{rollout['approveDecidedBy']}}{{(': ' + rollout['approvalRemark']) if rollout.get('approvalRemark') else ''}}</dd>
% end
    <dt>Created</dt><dd>{{when(rollout.get('createdAt'))}} by {{rollout.get('createdBy', '')}}</dd>
    <dt>Targets</dt><dd>{{rollout['totalTargets']}} in {{rollout['totalGroups']}} group{{'' if rollout['totalGroups'] == 1 else 's'}}</dd>
  </dl>
% include('progress.tpl', figures=figures, label='The whole rollout')
</section>
% if verbs:
<section class="card verbs" aria-label="What the rollout can do now">
%   for verb in verbs:
%     if verb in confirmed:
  <a class="button{{' danger' if verb == 'delete' else ''}}" href="{{ui('/rollouts/%d/%s' % (rollout['id'], verb))}}">{{labels[verb][1]}}</a>
%     elif verb == 'approve':
  <form id="decide" method="post" action="{{ui('/rollouts/%d/approve' % rollout['id'])}}">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <label for="remark">Remark (optional)</label>
    <input id="remark" name="remark" maxlength="255">
    <button type="submit">Approve</button>
    <button type="submit" class="danger" formaction="{{ui('/rollouts/%d/deny' % rollout['id'])}}">Deny</button>
  </form>
%     elif verb != 'deny':
  <form class="inline" method="post" action="{{ui('/rollouts/%d/%s' % (rollout['id'], verb))}}">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <button type="submit">{{labels[verb][1]}}</button>
  </form>
%     end
%   end
</section>
% end
<section class="card">
  <h2>Groups</h2>
% for group in groups:
  <div class="group" data-group="{{group['name']}}" data-group-status="{{group['status']}}">
    <h3><a href="{{ui('/rollouts/%d/groups/%d' % (rollout['id'], group['id']))}}">{{group['name']}}</a>
      <span class="tag g-{{group['status']}}">{{group['status']}}</span>
      <small>next at {{group['successCondition']['expression']}} % finished, pauses above {{group['errorCondition']['expression']}} % failed</small></h3>
%   include('progress.tpl', figures=group['totalTargetsPerStatus'], label=group['name'])
  </div>
% end
</section>
