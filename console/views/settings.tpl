% rebase('base.tpl', title=title, session=session)
<h1>Settings</h1>
<form id="settings" class="card" method="post" action="{{ui('/settings')}}">
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <label for="pollingTime">Polling time (HH:MM:SS)</label>
  <input id="pollingTime" name="pollingTime" value="{{values['pollingTime']}}" required
         pattern="[0-9]{2}:[0-9]{2}:[0-9]{2}(~[0-9]+%)?">
  <fieldset><legend>Device authentication and confirmation</legend>
% for key, label in toggles:
    <label class="check"><input type="checkbox" name="{{key}}" value="true" {{'checked' if values[key] else ''}}> {{label}}</label>
% end
  </fieldset>
  <label for="header-authority">Issuer hashes or authorities a TLS proxy may present (comma separated)</label>
  <input id="header-authority" name="authentication.header.authority"
         value="{{values['authentication.header.authority']}}">
  <button type="submit">Save settings</button>
</form>
<section class="card">
  <h2>Gateway token</h2>
% if new_token:
  <p class="said" role="status">The new gateway token, shown this once:</p>
  <p><code id="gateway-token">{{new_token}}</code></p>
% elif values['authentication.gatewaytoken.key']:
  <p>A gateway token is set. It is not shown again; make a new one if it was lost.</p>
% else:
  <p>No gateway token is set.</p>
% end
  <form id="new-gateway-token" method="post" action="{{ui('/settings/gateway-token')}}">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <button type="submit">Make a new gateway token</button>
  </form>
</section>
