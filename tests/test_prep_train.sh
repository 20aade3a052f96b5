# ctest-labels: e2e
# The text path end to end with the real Qwen tokenizer: VITA JSON lines -> vita prep (chat
# template, labels on answers only) -> vita train on a Qwen2 with the full 151,936-token
# vocabulary (chunked loss) -> the loss falls -> vita export with the tokenizer files.
set -u
TOK="$VT_SHARED_DIR/data/qwen-tokenizer"
[ -f "$TOK/tokenizer.json" ] || { echo "no shared tokenizer at $TOK: skipped"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
for i in $(seq 0 47); do
  case $((i % 3)) in
    0) q="What is the capital of France?"; a="Paris is the capital of France." ;;
    1) q="How many legs does a spider have?"; a="A spider has eight legs." ;;
    2) q="What colour is the sky?"; a="The sky is blue on a clear day." ;;
  esac
  printf '{"id": "t%d", "conversations": [{"from": "human", "value": "%s"}, {"from": "gpt", "value": "%s"}]}\n' "$i" "$q" "$a"
done > "$T/text.jsonl"
printf 'tokenizer: %s\nmax_len: 256\n' "$TOK" > "$T/prep.yaml"
"$VITA" prep --config "$T/prep.yaml" --out "$T/shards" --quiet "$T/text.jsonl" > "$T/prep.txt" 2>&1 \
  && grep -q '48 written' "$T/prep.txt" && echo "ok prep" || { echo "FAIL prep: $(cat "$T/prep.txt")"; fail=$((fail+1)); }
printf 'seed: 1\ndatasets:\n  - name: text\n    shards: shards\n' > "$T/mix.yaml"
sed -e 's/"vocab_size": 256/"vocab_size": 151936/' -e 's/"hidden_size": 128/"hidden_size": 32/' \
    -e 's/"intermediate_size": 352/"intermediate_size": 64/' -e 's/"tie_word_embeddings": false/"tie_word_embeddings": true/' \
    "$VT_SOURCE_DIR/configs/tiny/config.json" > "$T/config.json"
printf 'model: {config: config.json}\ndata: {mixture: mix.yaml, max_len: 256}\ntrain: {steps: 12, batch_size: 4, lr: 1.0e-2}\noutput: {dir: run, log_every: 0}\n' > "$T/train.yaml"
out=$("$VITA" train --config "$T/train.yaml" 2>&1)
first=$(sed -n 's/.*"step": 1, "loss": \([0-9.]*\),.*/\1/p' "$T/run/metrics.jsonl")
last=$(sed -n 's/.*"step": 12, "loss": \([0-9.]*\),.*/\1/p' "$T/run/metrics.jsonl")
if [ -n "$first" ] && [ -n "$last" ] && awk -v f="$first" -v l="$last" 'BEGIN { exit !(f > 11 && l < f - 2) }'; then
  echo "ok train: loss $first -> $last"
else
  echo "FAIL train: loss '$first' -> '$last': $out"; fail=$((fail+1))
fi
"$VITA" export --from "$T/run" --out "$T/export" --tokenizer "$TOK" > "$T/export.txt" 2>&1 \
  && [ -s "$T/export/tokenizer.json" ] && [ -s "$T/export/model.safetensors" ] && echo "ok export" \
  || { echo "FAIL export: $(cat "$T/export.txt")"; fail=$((fail+1)); }
echo "$((3 - fail)) passed, $fail failed"
[ $fail = 0 ]
