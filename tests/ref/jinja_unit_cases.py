#!/usr/bin/env python3
"""The table of tests/test_jinja.cpp (JinjaEngine.MatchesJinja2 / RefusesWhatJinja2Refuses): small
templates rendered with jinja2 as transformers configures it (_compile_jinja_template: sandbox,
trim_blocks, lstrip_blocks, loopcontrols, its tojson / raise_exception / strftime_now with the clock at
2024-07-26), printed as C++ to paste into the test after a change here.

  .venv/bin/python tests/ref/jinja_unit_cases.py > /tmp/table.inc
"""
import datetime

import transformers.utils.chat_template_utils as ctu
from transformers.utils.chat_template_utils import _compile_jinja_template

T = [
 "{{ 1 + 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 1.5 * 2 }} {{ 'ab' * 3 }} {{ [1] + [2] }}",
 "{{ 'a' ~ 1 ~ none ~ true }} {{ x }} [{{ undefined_thing }}]",
 "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }} {% endfor %}",
 "{% for m in messages %}{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('a','b') }};{% endfor %}",
 "{% for m in [] %}x{% else %}empty{% endfor %}",
 "{% for i in range(10) if i is odd %}{{ i }}{{ loop.length }},{% endfor %}",
 "{% for a, b in [(1,2),(3,4)] %}{{ a }}{{ b }}{% endfor %}",
 "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }} {% endfor %}",
 "{% for i in range(10) %}{% if i == 3 %}{% continue %}{% endif %}{% if i == 6 %}{% break %}{% endif %}{{ i }}{% endfor %}",
 "{% set ns = namespace(found=false, n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% set ns.found = true %}{% endfor %}{{ ns.n }} {{ ns.found }}",
 "{% set x = 1 %}{% for i in range(2) %}{% set x = x + 10 %}{{ x }} {% endfor %}{{ x }}",
 "{% set x %}hello {{ 1 }}{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}",
 "{% macro f(a, b=2) %}{{ a }}-{{ b }}{% endmacro %}{{ f(1) }} {{ f(1, 3) }} {{ f(b=5, a=4) }}",
 "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, k=4) }}",
 "{% macro g() %}<{{ caller() }}>{% endmacro %}{% call g() %}inner{% endcall %}",
 "{% macro g() %}<{{ caller(5) }}>{% endmacro %}{% call(x) g() %}inner{{ x }}{% endcall %}",
 "{% filter upper %}hello {{ 'w' }}{% endfilter %}",
 "{% raw %}{{ not rendered }}{% endraw %}",
 "a {# comment #} b\n  {%- if true %}\n  x\n  {% endif %}\n  y",
 "line1\n    {% if true %}\n    inside\n    {% endif %}\nend\n",
 "{{- '  x  ' -}}  \n  {{ 'y' }}",
 "{{ [1,2,3,4,5][1:4] }} {{ [1,2,3,4,5][::-1] }} {{ 'hello'[1:] }} {{ 'hello'[-2:] }} {{ [1,2,3][::2] }}",
 "{{ 1 in [1,2] }} {{ 3 not in [1,2] }} {{ 'a' in 'abc' }} {{ 'k' in {'k':1} }}",
 "{{ 1 < 2 < 3 }} {{ 1 < 2 > 3 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }}",
 "{{ none or 'x' }} {{ 0 and 1 }} {{ '' or [] }} {{ not none }} {{ 1 if false }} {{ 1 if false else 2 }}",
 "{{ x is defined }} {{ y is undefined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ [] is sequence }} {{ true is boolean }} {{ true is true }} {{ false is false }} {{ range is callable }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is gt 1 }} {{ 2 is le 2 }} {{ 2 is ge 3 }} {{ 1 is in [1] }}",
 "{{ '  a b  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ 'hello world-foo' | title }}|{{ 'hELLO' | capitalize }}|{{ 'aaa' | replace('a', 'b', 2) }}",
 "{{ [1,2,3] | join(', ') }} {{ [{'a':1},{'a':2}] | join('-', attribute='a') }} {{ {'a':1,'b':2} | items | list }} {{ undefined_x | default('d') }} {{ '' | default('d', true) }} {{ '' | d('e') }}",
 "{{ [3,1,2] | first }} {{ [3,1,2] | last }} {{ 'abc' | list }} {{ [{'n':'x'},{'n':'y'}] | map(attribute='n') | list }} {{ ['a','b'] | map('upper') | join }}",
 "{{ [1,2,3,4] | select('odd') | list }} {{ [1,2,3,4] | reject('odd') | list }} {{ [{'r':'a'},{'r':'b'}] | selectattr('r', 'equalto', 'a') | list }} {{ [{'r':'a'},{'r':'b'}] | rejectattr('r', 'eq', 'a') | list }} {{ [0,1,none,2] | select | list }}",
 "{{ 12 | string }} {{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int(5) }} {{ '3.5' | float }} {{ -3 | abs }} {{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 3.1 | round(0, 'ceil') }} {{ 5 | round }}",
 "{{ 'a\nb\nc' | indent(2) }}|{{ 'a\n\nb' | indent(2, true, true) }}|{{ 'one two three' | wordcount }}|{{ ['a','A','b'] | unique | list }}|{{ [3,1,2] | sort }}|{{ [{'a':2},{'a':1}] | sort(attribute='a') }}|{{ [1,2] | sort(reverse=true) }}",
 "{{ [1,2,3] | reverse | list }} {{ 'abc' | reverse }} {{ [1,2,3] | sum }} {{ [1,5,3] | min }} {{ [1,5,3] | max }} {{ [1,2,3,4,5] | batch(2) | list }} {{ {'b':1,'a':2} | dictsort }} {{ 'abc' | center(9) }}|{{ 'a very long sentence here' | truncate(12) }}",
 "{{ {'a': 1, 'b': [1, 2.5, 'x', none, true]} | tojson }}|{{ {'a': {'b': 1}} | tojson(indent=2) }}|{{ 'é\"\\n' | tojson }}|{{ {'z':1,'a':2} | tojson(sort_keys=true) }}|{{ [1,2] | tojson(separators=(',', ':')) }}",
 "{{ '  abc  '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b  c'.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('x','lo')) }}|{{ 'abc'.find('c') }}|{{ 'aaa'.count('a') }}|{{ '-'.join(['a','b']) }}|{{ 'a\nb'.splitlines() }}|{{ '123'.isdigit() }}|{{ 'abc'.isalpha() }}|{{ ' '.isspace() }}|{{ 'xax'.lstrip('x') }}|{{ 'xax'.rstrip('x') }}",
 "{{ {'a':1}.get('a') }} {{ {'a':1}.get('b') }} {{ {'a':1}.get('b', 2) }} {{ {'a':1}.keys() | list }} {{ {'a':1}.values() | list }} {{ {'a':1}.items() | list }}",
 "{{ raise_exception('boom') }}",
 "{{ strftime_now('%d %b %Y') }}",
 "{{ x.y.z }}",
 "{{ messages[0].content }} {{ messages[0]['role'] }} {{ messages[5] }}|{{ messages[0].nope }}|",
 "{{ messages[0].nope.deeper }}",
 "{% set l = [1] %}{{ l.append(2) }}",
 "{{ dict(a=1, b=2) }} {{ range(3) | list }} {{ range(1, 10, 3) | list }}",
 "{{ 'x' + 1 }}",
 "{{ [1, 2] }} {{ (1,) }} {{ {'a': 'b'} }} {{ 'it\\'s' }} {{ \"a'b\" }} {{ 1.0 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ none }} {{ True }}",
 "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% set rest = messages[1:] %}{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}{{ sys }}|{{ rest | length }}",
 "{%- for message in messages %}\n{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n{{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n",
 "{% generation %}gen{{ 1 }}{% endgeneration %}",
 "{{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ messages | map(attribute='role') | join(',') }}",
 "{% for m in messages %}{% if m.content is string %}s{% endif %}{% endfor %}",
 "{{ 10 / 0 }}",
 "{% for x in 5 %}{% endfor %}",
 "{% if %}",
 "{% for %}",
 "{{ foo( }}",
 "{% endif %}",
 "{% do x %}",
 "{{ 'abc' | nofilter }}",
 "{{ 1 is nosuchtest }}",
 "{% set a, b = 1, 2 %}{{ a }}{{ b }}",
 "{% with a = 1 %}{{ a }}{% endwith %}{{ a }}",
 "{{ loop }}",
 "{{ 'hello %s %d' | format('w', 3) }} {{ '%s-%s' % ('a', 'b') }} {{ '{}-{}'.format(1, 2) }} {{ '{x}'.format(x=1) }}",
 "{{ messages[0] }}",
 "{{ tools | tojson }}",
 "{{ '\\u00e9\\x41\\t|' }}",
 "{{ 'ÉCOLE straße' | lower }} {{ 'straße' | upper }} {{ 'ǆ' | title }}",
 "{% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{{ i }}{% endfor %}{% endfor %}",
 "{{ 3 // 0 }}",
 "{{ -1 ** 2 }} {{ 2 ** -1 }} {{ (-8) % 3 }} {{ -8.5 % 3 }} {{ 7.0 // 2 }} {{ True + 1 }}",
 "{{ [1,2,3] | length }} {{ 'héllo' | length }} {{ {'a':1} | count }} {{ undefined | length }}",
 "{% for m in messages|reverse %}{{ m.role }}{% endfor %}",
 "{{ messages[-1].role }} {{ (messages | last).role }}",
 "  {%+ if true %}x{% endif +%}\n  y",
 "{{ ns.x }}",
 "{% set ns = namespace() %}{{ ns.x }}|{% set ns.x = 1 %}{{ ns.x }}",
 "{{ 'a' if 1 else 'b' }}{{ 'c' if 0 else 'd' if 1 else 'e' }}",
 "{{ 2 * 3 + 4 * 5 - 1 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ not 1 == 2 }}",
 "{{ 'abc'[0] }}{{ 'abc'[-1] }}{{ [1,2,3][-1] }}",
 "{{ {'a': 1}['b'] }}|{{ [1][5] }}|",
 "{{ message.content|trim }}",
 "{{ 'A B'|lower|replace(' ', '_') }}",
 "{{ [1,2,3]|map('string')|join('') }}",
 "{{ {'type':'function','function':{'name':'get','parameters':{'type':'object','properties':{'x':{'type':'string'}}}}} | tojson(indent=4) }}",
 "{{ 1 }}\n{{ 2 }}\n",
 "{% if true %}\nA\n{% endif %}\nB",
 "{{ messages|tojson }}",
 "{{ none | tojson }} {{ 1.5 | tojson }} {{ [1,(2,3)] | tojson }} {{ undefined_q | tojson }}",
]


class FixedClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.datetime(2024, 7, 26)


ctu.datetime = FixedClock
messages = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def cpp(s):
    out = '"'
    for ch in s:
        o = ord(ch)
        if ch == '"': out += '\\"'
        elif ch == '\\': out += '\\\\'
        elif ch == '\n': out += '\\n'
        elif ch == '\t': out += '\\t'
        elif o < 0x20: out += '\\x%02x""' % o
        elif o < 0x80: out += ch
        else: out += ''.join('\\x%02x' % b for b in ch.encode()) + '""'
    return out + '"'
ok, err = [], []
for t in T:
    try:
        r = _compile_jinja_template(t).render(messages=messages, tools=tools, x=5, add_generation_prompt=True)
        ok.append((t, r))
    except Exception as e:
        err.append((t, f"{type(e).__name__}: {e}"))
print("// Generated by rendering each template with transformers' _compile_jinja_template (jinja2 3.1.6).")
print("const std::pair<const char*, const char*> kMatches[] = {")
for t, r in ok: print(f"    {{{cpp(t)},\n     {cpp(r)}}},")
print("};")
print("// Templates jinja2 refuses (its error in the comment); the engine must refuse them too.")
print("const char* kRefused[] = {")
for t, e in err: print(f"    {cpp(t)},  // {e[:90]}")
print("};")
