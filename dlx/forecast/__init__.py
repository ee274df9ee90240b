"""Forecasting core: the Kalman filter of linear-Gaussian innovation state-space models (kalman.py), ISSM
components (issm.py), frequencies, time features and seasons (time.py), panels of series and their splits
(panel.py), the synthetic ISSM panel (synthetic.py), statsmodels baselines fitted per series (local.py) and
forecast figures (plots.py). Models live in dlx/models/forecasters.py, the task in dlx/tasks/forecast.py."""
