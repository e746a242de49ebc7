#!/usr/bin/env bash
# Generates spoken answers of about 10, 30, 60 and 90 seconds with espeak-ng (16 kHz mono WAV,
# with a second of silence before the answer, as a candidate thinks), for `viva bench` and the
# side-by-side peer. usage: scripts/make-bench-wavs.sh [OUT_DIR]
set -euo pipefail
out=${1:-target/bench-wavs}
mkdir -p "$out"
s1="We had an outage when the payments database ran out of connections. I declared an incident and paged the on call engineer."
s2="First I reproduced the problem in staging and gathered evidence from the logs, the metrics and the traces. \
The dashboards showed the connection pool was exhausted a few minutes after every deploy. \
We bisected the recent changes and found a retry loop without backoff that opened a new connection on every failure. \
I posted status updates to the support team every thirty minutes while two engineers worked on the fix in parallel."
s3="The fix added exponential backoff with jitter, a timeout on every call and a circuit breaker around the database client. \
We verified it in staging with a load test, deployed it behind a feature flag and watched the error rate for an hour. \
Afterwards we held a blameless postmortem and wrote three follow up actions: a regression test, an alert on pool saturation and a runbook. \
Errors dropped by ninety five percent and we have not had a repeat since."
s4="On security, I validate every input at the edge, use parameterised queries so injection is not possible, \
and give each service its own database user with only the permissions it needs. Secrets live in a secrets manager and are rotated. \
I would start with the simplest design that works, a single service and one database, and only split it when the metrics show we need to."
declare -A texts=(
  [answer-10s]="$s1"
  [answer-30s]="$s1 $s2"
  [answer-60s]="$s1 $s2 $s3"
  [answer-90s]="$s1 $s2 $s3 $s4"
)
for name in "${!texts[@]}"; do
  espeak-ng -w "$out/$name.raw.wav" "${texts[$name]}"
  sox -n -r 22050 -c 1 -b 16 "$out/$name.pad.wav" trim 0 1.0
  sox "$out/$name.pad.wav" "$out/$name.raw.wav" -r 16000 -c 1 -b 16 "$out/$name.wav"
  rm "$out/$name.raw.wav" "$out/$name.pad.wav"
  printf "%s\n" "${texts[$name]}" > "$out/$name.txt"
done
ls "$out"/*.wav
