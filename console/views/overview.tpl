% rebase('base.tpl', title=title, session=session)
<h1>Fleet overview</h1>
<div id="live" data-live="{{ui('/fragment/overview')}}" aria-live="polite">
% include('overview_live.tpl')
</div>
