<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · ddi-lite</title>
<link rel="stylesheet" href="{{ui('/static/console.css')}}">
% if session:
<script src="{{ui('/static/console.js')}}" defer></script>
% end
</head>
<body>
<header>
  <a class="brand" href="{{ui()}}">ddi-lite</a>
% if session:
  <nav aria-label="Main">
    <a href="{{ui()}}">Overview</a>
    <a href="{{ui('/targets')}}">Targets</a>
    <a href="{{ui('/software')}}">Software</a>
    <a href="{{ui('/rollouts')}}">Rollouts</a>
    <a href="{{ui('/settings')}}">Settings</a>
  </nav>
  <form id="signout" class="signout" method="post" action="{{ui('/signout')}}">
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <span class="user">{{session.user}}</span>
    <button type="submit">Sign out</button>
  </form>
% end
</header>
<main>
% if session:
<svg class="defs" aria-hidden="true" focusable="false" width="0" height="0">
  <defs><pattern id="failed-hatch" width="1.2" height="4" patternUnits="userSpaceOnUse">
    <rect class="hatch-ground" width="1.2" height="4"></rect><rect class="hatch-line" width="0.45" height="4"></rect>
  </pattern></defs>
</svg>
% end
% if get('said'):
<p class="said" role="status">{{said}}</p>
% end
{{!base}}
</main>
</body>
</html>
