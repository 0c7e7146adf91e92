"""Methods x label fractions x seeds: presets (``grid``), one bundle run per process (``runner``), summaries with
confidence intervals (``aggregate``), the report and its figures (``report``, ``figures``). Repository only."""
