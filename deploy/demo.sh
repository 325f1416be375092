#!/usr/bin/env bash
# The main job on the embedded stack: bring every server up and show that each answers.
set -euo pipefail
acmeflow dev up --detach
acmeflow dev status
