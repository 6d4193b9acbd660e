% rebase('base.tpl', title=title, session=session)
<h1>{{rollout['name']}}</h1>
<p><a href="{{ui('/rollouts')}}">All rollouts</a></p>
% if live:
<div id="live" data-live="{{ui('/fragment/rollouts/%d' % rollout['id'])}}" aria-live="polite">
% else:
<div id="live">
% end
% include('rollout_live.tpl')
</div>
