"""Training module: one trainer for every task (a task is data + a config).

Commands: python -m training.<train|lr_finder|grid_search|evaluate|baselines|loss_study>
          --config training/configs/<task>.yaml
"""
