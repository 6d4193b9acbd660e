% rebase('base.tpl', title=title, session=None)
<h1>Sign in</h1>
% if message:
<p class="problem" role="alert">{{message}}</p>
% end
<form id="signin" class="card narrow" method="post" action="{{ui('/signin')}}">
  <input type="hidden" name="csrf" value="{{token}}">
% if next:
  <input type="hidden" name="next" value="{{next}}">
% end
  <label for="user">User</label>
  <input id="user" name="user" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
