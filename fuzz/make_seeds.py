"""Writes the hand-made seed inputs of the fuzz corpora (run from fuzz/: python3 make_seeds.py).
The fuzzers then grow the corpora from these; `cargo fuzz cmin` keeps them small."""
import math
import os
import struct


def w(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(os.path.join('corpus', d), exist_ok=True)
    with open(os.path.join('corpus', d, 'seed_' + name), 'wb') as f:
        f.write(data)


# client_message: every message of PROTOCOL.md, and each kind of bad text.
msgs = {
    'start_s16_16k': '{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":16000,"channels":1}}',
    'start_f32_48k_stereo': '{"type":"start","audio":{"encoding":"pcm_f32le","sample_rate":48000,"channels":2}}',
    'start_default_channels': '{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":22050}}',
    'start_rate_low': '{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":7999}}',
    'start_rate_high': '{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":96000}}',
    'start_rate_float': '{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":16000.5}}',
    'start_rate_negative': '{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":-1}}',
    'start_rate_huge': '{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":18446744073709551615}}',
    'start_opus': '{"type":"start","audio":{"encoding":"opus","sample_rate":16000}}',
    'start_channels_3': '{"type":"start","audio":{"encoding":"pcm_f32le","sample_rate":16000,"channels":3}}',
    'start_channels_str': '{"type":"start","audio":{"encoding":"pcm_f32le","sample_rate":16000,"channels":"1"}}',
    'start_no_audio': '{"type":"start"}',
    'start_audio_array': '{"type":"start","audio":[1,2]}',
    'start_no_encoding': '{"type":"start","audio":{"sample_rate":16000}}',
    'start_long_encoding': '{"type":"start","audio":{"encoding":"' + 'é' * 100 + '","sample_rate":16000}}',
    'end_answer': '{"type":"end_answer"}',
    'next': '{"type":"next"}',
    'skip': '{"type":"skip"}',
    'finish_extra_field': '{"type":"finish","extra":true}',
    'unknown_type': '{"type":"dance"}',
    'unknown_type_long': '{"type":"' + '🎤' * 60 + '"}',
    'type_number': '{"type":7}',
    'missing_type': '{"kind":"start"}',
    'array': '[1,2,3]',
    'string': '"start"',
    'null': 'null',
    'malformed': '{"type":"start",',
    'empty': '',
    'deep': '[' * 200 + ']' * 200,
    'dup_type': '{"type":"next","type":"finish"}',
    'escaped': '{"type":"\\u0073tart","audio":{"encoding":"pcm_s16le","sample_rate":8000,"channels":2}}',
}
for k, v in msgs.items():
    w('client_message', k, v)


# audio_frame: byte 0 = encoding (bit 0) and channels (bit 1); bytes 1-2 = rate selector
# (top bit: common rate by index, else 8000 + n); byte 3 = where to cut; then the frame.
def hdr(enc, stereo, rate_sel, cut=128):
    return bytes([enc | (stereo << 1)]) + struct.pack('<H', rate_sel) + bytes([cut])


common = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]
for idx, rate in enumerate(common):
    vals = [0.5 * math.sin(2 * math.pi * 440 * i / rate) for i in range(rate // 10)]
    w('audio_frame', f's16_tone_{rate}', hdr(0, 0, 0x8000 | idx) + b''.join(struct.pack('<h', int(v * 32767)) for v in vals))
    w('audio_frame', f'f32_tone_{rate}', hdr(1, 0, 0x8000 | idx) + b''.join(struct.pack('<f', v) for v in vals))
w('audio_frame', 'stereo_s16_48k', hdr(0, 1, 0x8007) + b''.join(struct.pack('<hh', i * 60, -i * 60) for i in range(480)))
w('audio_frame', 'odd_size_s16', hdr(0, 0, 0x8002) + b'\x01\x02\x03')
w('audio_frame', 'odd_size_f32_stereo', hdr(1, 1, 0x8002) + b'\x00' * 12)
w('audio_frame', 'nan_inf_f32', hdr(1, 0, 0x8002) + struct.pack('<ffff', float('nan'), float('inf'), -float('inf'), 3.0))
w('audio_frame', 'full_scale_s16_44k', hdr(0, 0, 0x8006) + struct.pack('<' + 'h' * 882, *([32767, -32768] * 441)))
w('audio_frame', 'prime_rate_47999', hdr(0, 0, 47999 - 8000) + b'\x10\x00' * 4800)
w('audio_frame', 'rate_8001_f32', hdr(1, 0, 1) + struct.pack('<f', 0.25) * 801)
w('audio_frame', 'empty_frame', hdr(0, 0, 0x8002))

# guide_loader: the shipped guide, a small valid one, and one file per validation problem.
w('guide_loader', 'backend-developer.toml', open('../guides/backend-developer.toml', 'rb').read())
small = r'''id = "tiny"
title = "Tiny"
[synonyms]
tell = ["tell", "told"]
[heard_as]
owasp = ["oh wasp"]
[[competencies]]
id = "comm"
label = "Communication"
description = "Talks."
[[competencies.items]]
id = "comm.tell"
label = "Told people"
hint = "Say who you told."
phrases = ["{tell} ... support", "status update*"]
patterns = ['\bevery \d+ minutes\b']
[[questions]]
id = "q1"
kind = "behavioural"
text = "Tell me about an outage."
competencies = ["comm"]
time_limit_ms = 120000
order = 1
'''
PATTERNS = r"patterns = ['\bevery \d+ minutes\b']" + "\n"
PHRASES = 'phrases = ["{tell} ... support", "status update*"]\n'
g = 'guide_loader'
w(g, 'small_valid.toml', small)
w(g, 'unknown_competency.toml', small.replace('competencies = ["comm"]', 'competencies = ["nope"]'))
w(g, 'duplicate_item.toml', small.replace('[[questions]]', '[[competencies.items]]\nid = "comm.tell"\nlabel = "x"\nhint = "y"\nphrases = ["a"]\n[[questions]]'))
w(g, 'duplicate_question.toml', small + small[small.index('[[questions]]'):])
w(g, 'item_outside.toml', small.replace('id = "comm.tell"', 'id = "other.tell"'))
w(g, 'bad_pattern.toml', small.replace(PATTERNS, "patterns = ['(unclosed']\n"))
w(g, 'unknown_class.toml', small.replace('{tell} ... support', '{shout} ... support'))
w(g, 'bad_phrase_gap.toml', small.replace('"status update*"', '"... update"'))
w(g, 'undetectable.toml', small.replace(PHRASES, '').replace(PATTERNS, ''))
w(g, 'no_items.toml', small[:small.index('[[competencies.items]]')] + 'items = []\n' + small[small.index('[[questions]]'):])
w(g, 'no_questions.toml', small[:small.index('[[questions]]')] + 'questions = []\n')
w(g, 'unknown_field.toml', small.replace('title = "Tiny"', 'title = "Tiny"\ncolour = "red"'))
w(g, 'syntax_error.toml', small.replace('order = 1', 'order = '))
w(g, 'repetition_pattern.toml', small.replace(PATTERNS, r"patterns = ['{tell} \w{2,3} x{3}']" + "\n"))
