#!/usr/bin/env bash
# Generates spoken answers of about 10, 30, 60, 90 and 180 seconds with espeak-ng (16 kHz mono WAV,
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
s5="When the team asked for a new search feature, I pushed back on adding a separate search cluster. \
We measured the queries first and found that an index on two columns answered them in under ten milliseconds. \
That saved us a new system to run, monitor and secure, and the on call rota stayed the same size. \
If the data grows tenfold we will revisit it, and the decision and its numbers are written down so whoever comes next can see why."
s6="Another time a customer reported that exports were sometimes empty. I could not reproduce it at first, so I added logging around the export job \
and a correlation id on every request. Two days later the logs showed the job reading from a replica that lagged behind the primary by several seconds. \
I wrote a test that reproduced the lag, moved the read to the primary for that one query, and added an alert on replica lag above five seconds. \
I told the customer what had happened, what we changed and how we would know if it came back."
s7="Finally, when I review a design, I ask what happens when each dependency is slow or down, where the timeouts are, \
what gets retried and whether the retry is safe, and how we would roll it back. I prefer boring technology we already know how to operate, \
and I want every secret, every permission and every open port to have a reason written next to it."
s8="As for what I would do in my first month here, I would read the last few postmortems, join the on call rota as a shadow, \
and pick one small change to ship end to end, so I learn the deploy pipeline, the dashboards and the people before I suggest anything bigger. \
I would also ask the team which alerts wake them up for nothing, because fixing those is cheap and everyone feels it."
declare -A texts=(
  [answer-180s]="$s1 $s2 $s3 $s4 $s5 $s6 $s7 $s8"
  [answer-10s]="$s1"
  [answer-30s]="$s1 $s2"
  [answer-60s]="$s1 $s2 $s3"
  [answer-90s]="$s1 $s2 $s3 $s4"
)
for name in "${!texts[@]}"; do
  espeak-ng -w "$out/$name.raw.wav" "${texts[$name]}"
  # -R: sox's repeatable mode. Its dither is random noise, and without it each run made other
  # WAVs, whose transcripts (and word error rates) differed by a few words from run to run.
  sox -R -n -r 22050 -c 1 -b 16 "$out/$name.pad.wav" trim 0 1.0
  sox -R "$out/$name.pad.wav" "$out/$name.raw.wav" -r 16000 -c 1 -b 16 "$out/$name.wav"
  rm "$out/$name.raw.wav" "$out/$name.pad.wav"
  printf "%s\n" "${texts[$name]}" > "$out/$name.txt"
done
ls "$out"/*.wav
