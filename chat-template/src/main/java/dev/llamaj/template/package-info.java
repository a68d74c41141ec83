/// Chat templates: the Jinja text that instruction-tuned models ship (`tokenizer.chat_template` in a GGUF file)
/// to turn a conversation into the exact prompt they were trained on, rendered as Hugging Face `transformers`
/// renders it (Python Jinja2 3.1, immutable sandbox, `trim_blocks`, `lstrip_blocks`, loop controls).
///
/// [dev.llamaj.template.ChatTemplate] is the entry point; [dev.llamaj.template.Message] a turn;
/// [dev.llamaj.template.TemplateException] every failure. The rest is the interpreter: `Lexer` (text and
/// whitespace control), `Parser` to `Node` records, `Renderer` (scopes, loops, macros, limits), `Py` (Python
/// values) and `Builtins` (filters, tests, methods, globals); `Marked` carries the provenance of request text
/// through all of them (see [dev.llamaj.template.ChatTemplate#renderRequest]) and `Roles` finds the role names a
/// template handles.
///
/// Supported: `{{ }}`, `{% %}`, `{# #}`, `-`/`+` whitespace control, `raw`; `if`/`elif`/`else`, `for` (loop
/// variables, inline `if`, `else`, `recursive`, `loop.cycle`/`changed`), `break`/`continue`, `set` (names,
/// tuples, `ns.attr`, block form with filters), `macro` (defaults, keywords, `varargs`/`kwargs`), `filter`,
/// `with`, `generation`; Jinja2's operators and precedence, literals, slices, Python string/dict/list methods,
/// `%` and `str.format`; every Jinja2 filter and test except those below; globals `range`, `dict`,
/// `namespace`, `joiner`, `raise_exception`, `strftime_now`.
///
/// Not supported: `extends`/`block`/`include`/`import`/`from` (there is no loader), `call` blocks and `caller`,
/// `autoescape` and `Markup`, the `do` extension; filters `batch`, `groupby`, `slice`, `striptags`,
/// `wordwrap`, `urlize`, `urlencode`, `xmlattr`, `pprint`, `random`, `filesizeformat` (refused when used);
/// globals `cycler` and `lipsum`; integers beyond 64 bits (an error, where Python would grow them).
package dev.llamaj.template;
