% # A progress bar of a group or a rollout (its totalTargetsPerStatus): finished solid,
% # failed hatched, cancelled grey, running light; what is left is the bar's background.
% total = sum(figures.values())
% shown = [(key, figures.get(key, 0)) for key in ('finished', 'error', 'cancelled', 'running')]
<svg class="bar progress" viewBox="0 0 100 4" preserveAspectRatio="none" role="img"
     aria-label="{{label}}: {{figures.get('finished', 0)}} finished, {{figures.get('error', 0)}} failed, {{figures.get('cancelled', 0)}} cancelled, {{figures.get('running', 0)}} running of {{total}}">
% x = 0.0
% for key, count in shown:
%   if total and count:
%     width = 100.0 * count / total
  <rect class="p-{{key}}" x="{{'%.3f' % x}}" y="0" width="{{'%.3f' % width}}" height="4"></rect>
%     x += width
%   end
% end
</svg>
% if get('counts', True):
<p class="counts"><span class="swatch p-finished"></span> {{figures.get('finished', 0)}} finished
  · <span class="swatch p-error"></span> <span data-failed="{{figures.get('error', 0)}}">{{figures.get('error', 0)}} failed</span>
  · <span class="swatch p-running"></span> {{figures.get('running', 0)}} running
% if figures.get('cancelled'):
  · <span class="swatch p-cancelled"></span> {{figures['cancelled']}} cancelled
% end
  · {{figures.get('scheduled', 0) + figures.get('notstarted', 0)}} waiting
  · {{total}} in all</p>
% end
