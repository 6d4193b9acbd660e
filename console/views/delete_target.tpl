% rebase('base.tpl', title=title, session=session)
<h1>Delete {{target['controllerId']}}?</h1>
<form id="delete-target" class="card narrow" method="post" action="{{ui('/targets/' + segment(target['controllerId']) + '/delete')}}">
  <p>The target, its actions and their history are deleted for good. The device registers
  again as a new target if it polls with the gateway token.</p>
  <input type="hidden" name="csrf" value="{{session.csrf}}">
  <label for="confirm">Type the controller id to confirm</label>
  <input id="confirm" name="confirm" required autocomplete="off">
  <button class="danger" type="submit">Delete target</button>
  <a href="{{ui('/targets/' + segment(target['controllerId']))}}">Keep it</a>
</form>
