% rebase('base.tpl', title=title, session=session)
<h1>{{verb.capitalize()}} {{rollout['name']}}?</h1>
<form id="confirm-{{verb}}" class="card narrow" method="post" action="{{ui('/rollouts/%d/%s' % (rollout['id'], verb))}}">
% if verb == 'stop':
  <p>Targets whose group has not started yet get nothing: their actions are cancelled.
  Devices already installing go on. A stopped rollout cannot be started again.</p>
% else:
  <p>Actions not started yet are removed. A rollout whose other actions remain is kept as
  deleted (out of the list); devices already installing go on.</p>
% end
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <input type="hidden" name="confirm" value="yes">
  <button class="danger" type="submit">{{verb.capitalize()}} the rollout</button>
  <a href="{{ui('/rollouts/%d' % rollout['id'])}}">Keep it</a>
</form>
