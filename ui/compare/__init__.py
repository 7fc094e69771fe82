"""The Compare page: two to four models side by side on one input. ``page.py`` decides, ``compare_view.py`` lays
it out; the models to tick, the answers, the chart, the past comparisons and the leaderboard have a module each."""
