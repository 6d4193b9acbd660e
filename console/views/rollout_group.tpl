% rebase('base.tpl', title=title, session=session)
<h1>{{group['name']}} <span class="tag g-{{group['status']}}">{{group['status']}}</span></h1>
<p><a href="{{ui('/rollouts/%d' % rollout['id'])}}">Rollout {{rollout['name']}}</a></p>
<section class="card">
% include('progress.tpl', figures=group['totalTargetsPerStatus'], label=group['name'])
</section>
<p>{{total}} target{{'' if total == 1 else 's'}}
% if total:
 · showing {{offset + 1}}–{{offset + len(actions)}}
% end
</p>
% if actions:
<table class="list">
  <thead><tr><th scope="col">Target</th><th scope="col">Action</th><th scope="col" class="wide-only">Changed</th></tr></thead>
  <tbody>
% for action in actions:
    <tr><td><a href="{{ui('/targets/' + segment(action['controllerId']))}}">{{action['controllerId']}}</a></td>
      <td><span class="tag a-{{action['status']}}" data-action-status="{{action['status']}}">{{action['status']}}</span></td>
      <td class="wide-only">{{when(action.get('lastModifiedAt'))}}</td></tr>
% end
  </tbody>
</table>
% end
<nav class="pages" aria-label="Pages">
% here = '/rollouts/%d/groups/%d' % (rollout['id'], group['id'])
% if offset > 0:
  <a rel="prev" href="{{ui(here, offset=max(0, offset - page_size))}}">Previous</a>
% end
% if offset + page_size < total:
  <a rel="next" href="{{ui(here, offset=offset + page_size)}}">Next</a>
% end
</nav>
