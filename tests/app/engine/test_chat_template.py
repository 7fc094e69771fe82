"""A model file's chat template renders under a budget: hostile templates end at once in one sentence that offers
ChatML, never in a hang, a memory blow-up or a traceback, and real templates render exactly as llama-cpp-python
renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.errors import EngineError

CHATML_OFFER = "Hearth can write the conversation in ChatML instead, a format most chat models understand."

# Each was a hang, gigabytes, or a traceback in sandbox jargon before templates had a budget (part 10).
HOSTILE = {
    "range 10**9": "{% for i in range(10**9) %}{{ i }}{% endfor %}",
    "nested empty loops": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "nested loops writing": "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
    "macro recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "exponential macro": "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "recursive loop": "{% for m in [1] recursive %}{{ loop([1]) }}{% endfor %}",
    "constant huge string": "{{ 'x' * 10**10 }}",  # Jinja folded this while compiling, in the model's load
    "variable huge string": "{% set n = 10**10 %}{{ 'x' * n }}",
    "100 MB output": "{% set n = 10**8 %}{{ 'x' * n }}",
    "doubling concat": "{% set s = 'xxxxxxxx' %}" + "{% set s = s ~ s %}" * 34 + "{{ s }}",
    "namespace doubling": "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}"
                          "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "huge power": "{% set n = 10**9 %}{% set m = 7 ** n %}done",
    "replace filter": "{% set s = 'x' * 100000 %}{{ s|replace('x', s) }}",
    "replace method": "{% set s = 'x' * 100000 %}{{ s.replace('x', s) }}",
    "join": "{% set s = 'x' * 100000 %}{{ ([s] * 50000)|join }}",
    "center filter": "{% set n = 10**10 %}{{ ''|center(n) }}",
    "format filter width": "{% set n = 10**10 %}{{ '%*s'|format(n, 'x') }}",
    "percent width": "{{ '%1000000000s' % 'x' }}",
    "format method width": "{{ '{:>1000000000}'.format('x') }}",
    "streamed output": "{% for i in range(99999) %}{{ 'y'|center(99999) }}{% endfor %}",
    "list repeat": "{{ messages * 10**7 }}",
    "content repeat": "{% set n = 10**9 %}{% for m in messages %}{{ m.content * n }}{% endfor %}",
    "tojson repeat": "{% set n = 10**8 %}{{ (messages|tojson) * n }}",
    "strftime": "{% set f = '%Y' * 10**7 %}{{ strftime_now(f) }}",
    "lipsum": "{{ lipsum(10**6) }}",
    "sort in a loop": "{% for i in range(99999) %}{{ range(99999)|list|sort|length }}{% endfor %}",
    "attribute probing": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals probing": "{{ self.__init__.__globals__ }}{{ cycler.__init__.__globals__.os }}",
    "undefined": "{{ foo.bar.baz }}",
    "syntax error": "{% for m in messages %}{{ m.content }",
    "include": "{% include 'other.jinja' %}",
}

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA_3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
           "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
           "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
           "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
           "{% endif %}")
MISTRAL = ("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
           "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
           "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
           "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
           "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
QWEN = ("{%- if tools %}{{- '<|im_start|>system\n' }}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}"
        "{%- else %}{%- if messages[0]['role'] == 'system' %}"
        "{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}"
        "{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.<|im_end|>\n' }}{%- endif %}{%- endif %}"
        "{%- set ns = namespace(last_user=0) %}{%- for message in messages %}{%- if message.role == 'user' %}"
        "{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
        "{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not "
        "loop.first) %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}"
        "{%- elif message.role == 'assistant' %}{{- '<|im_start|>' + message.role }}{%- if message.content %}"
        "{{- '\n' + message.content }}{%- endif %}{{- '<|im_end|>\n' }}{%- endif %}"
        "{%- if loop.index0 > ns.last_user + 5 %}{% break %}{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{% generation %}{% endgeneration %}"
        "{%- endif %}{{ messages|selectattr('role', 'equalto', 'user')|list|length }}"
        "{{ (messages|map(attribute='content')|join(' '))[:20]|upper }}{{ '%-5s|' % 'ab' }}{{ '{:>4}'.format(7) }}")

CONVERSATIONS = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Tell me a joke. " * 50}],
    [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " * 20} for i in range(3000)],
]


def _formatters() -> tuple[Any, Any]:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from app.engine.completion import _guarded_formatter

    return Jinja2ChatFormatter, _guarded_formatter()


def _render(formatter: Any, template: str, messages: list[dict[str, str]]) -> str:
    return str(formatter(template, "</s>", "<s>", stop_token_ids=[2])(messages=messages).prompt)


@pytest.mark.parametrize("template", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_template_ends_in_one_sentence_that_offers_chatml(template: str) -> None:
    from app.errors import ChatTemplateError

    _, guarded = _formatters()
    formatter = guarded(template, "</s>", "<s>")  # compiling is budgeted too: no folding of 'x' * 10**10
    with pytest.raises(ChatTemplateError) as raised:
        formatter(messages=CONVERSATIONS[0])
    message = str(raised.value)
    assert message.startswith("This model's chat template is broken: it ")
    assert message.endswith(CHATML_OFFER)
    assert "\n" not in message and "sandbox" not in message and "Error" not in message


@pytest.mark.parametrize("template", [CHATML, LLAMA_3, MISTRAL, QWEN], ids=["chatml", "llama3", "mistral", "qwen"])
def test_real_templates_render_as_llama_cpp_renders_them(template: str) -> None:
    plain, guarded = _formatters()
    for messages in CONVERSATIONS:
        if template is MISTRAL and messages[0]["role"] == "system":
            continue
        assert _render(guarded, template, messages) == _render(plain, template, messages)


def test_a_template_that_refuses_a_conversation_says_so_in_its_own_words() -> None:
    from app.errors import ChatTemplateError

    _, guarded = _formatters()
    with pytest.raises(ChatTemplateError) as raised:
        _render(guarded, MISTRAL, CONVERSATIONS[1])  # a system message: this template raises
    assert str(raised.value) == ("This model's chat template refused this conversation (“Conversation roles must "
                                 f"alternate user/assistant/user/assistant/...”). {CHATML_OFFER}")


@pytest.mark.engine
def test_the_engine_answers_a_broken_template_with_the_sentence_then_chatml(
        test_model_path: Path, tmp_path: Path) -> None:
    from app.engine import EngineClient
    from app.engine import protocol as p

    from tests.helpers.gguf_fixtures import with_chat_template

    engine = EngineClient()
    try:
        for name in ("nested empty loops", "constant huge string", "syntax error", "attribute probing"):
            folder = tmp_path / name.replace(" ", "-")
            folder.mkdir()
            engine.load_blocking(with_chat_template(test_model_path, folder, HOSTILE[name]), context_length=256)
            pid = engine.pid
            for _ in range(2):  # the next message too: a loop once hung every answer after it
                with pytest.raises(EngineError) as raised:
                    engine.chat_blocking([{"role": "user", "content": "Hello"}], max_tokens=4, timeout=300)
                assert str(raised.value).startswith("This model's chat template is broken: it ")
                assert type(raised.value).__name__ == "ChatTemplateError"  # so a front end can offer ChatML
            assert engine.pid == pid and engine.loaded is not None  # no restart, the model stays loaded
            engine.use_chatml()
            assert engine.loaded.chat_format == p.CHATML_CHOSEN
            finished = engine.chat_blocking([{"role": "user", "content": "Hello"}], max_tokens=4, timeout=300)
            assert finished.metrics.completion_tokens > 0
    finally:
        engine.shutdown()


@pytest.mark.engine
def test_a_draft_read_ahead_with_a_broken_template_is_silent_and_the_message_says_why(
        test_model_path: Path, tmp_path: Path) -> None:
    from app.engine import EngineClient
    from app.engine import protocol as p

    from tests.helpers.gguf_fixtures import with_chat_template

    engine = EngineClient()
    events: list[p.Event] = []
    engine.subscribe(events.append)
    try:
        engine.load_blocking(with_chat_template(test_model_path, tmp_path, HOSTILE["nested empty loops"]),
                             context_length=256)
        assert engine.read_ahead([{"role": "user", "content": "A draft"}], conversation="c1")
        with pytest.raises(EngineError, match="chat template is broken"):
            engine.chat_blocking([{"role": "user", "content": "A draft"}], max_tokens=4, conversation="c1",
                                 timeout=300)
    finally:
        engine.shutdown()
    failures = [e for e in events if isinstance(e, p.Failed)]
    assert [(f.during, f.chat_template) for f in failures] == [(p.During.GENERATE, True)]  # none for the draft
