#!/bin/sh
# Draw the data map (with histograms) of a recorded run: dy_log/$TASK_NAME/$MODEL -> dy_log/$TASK_NAME/$MODEL/plots/
# td_metrics.jsonl is computed first when it is missing or stale. Every variable can be overridden
# from the environment; extra flags go to plot_cartography.py (see its --help), e.g.
#   TASK_NAME=mnli MODEL=roberta-base BURN_OUT=3 sh plot.sh --hue forgetfulness --interactive
set -eu

TASK_NAME="${TASK_NAME:-sst2}"      # run folder's task part
MODEL="${MODEL:-bert-tiny}"         # run folder's model part (last part of the Hub id: prajjwal1/bert-tiny -> bert-tiny)
BURN_OUT="${BURN_OUT:-4}"           # use the first BURN_OUT epochs
DY_LOG_DIR="${DY_LOG_DIR:-dy_log}"
PYTHON="${PYTHON:-python}"

exec "$PYTHON" plot_cartography.py --model_dir "$DY_LOG_DIR/$TASK_NAME/$MODEL" --burn_out "$BURN_OUT" --show_hist "$@"
