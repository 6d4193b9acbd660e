% rebase('base.tpl', title=title, session=session)
<h1>Fleet overview</h1>
% if gateway:
<p>This server is a gateway: devices take their orders from its upstream server.
  <a href="{{ui('/gateway')}}">Upstream, waiting reports and the artifact cache</a></p>
% end
<div id="live" data-live="{{ui('/fragment/overview')}}" aria-live="polite">
% include('overview_live.tpl')
</div>
