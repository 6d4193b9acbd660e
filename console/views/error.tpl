% rebase('base.tpl', title=title, session=session)
<h1>{{title}}</h1>
<p class="problem" role="alert">{{message}}</p>
% if session:
<p><a href="{{ui()}}">Back to the overview</a></p>
% else:
<p><a href="{{ui('/signin')}}">Sign in</a></p>
% end
