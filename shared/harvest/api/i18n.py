# ruff: noqa: E501  (the catalogue is a table: one message per line reads best)
"""Error messages in the language the request asked for (X-TC-Language, or `Language` in v1).

English is what every error carries. For zh-CN an error raised with its own `zh` text uses it;
otherwise its English message is matched against the catalogue below, which renders the same
facts (names, values, limits) in Chinese. A message the catalogue does not know still answers in
Chinese first: the code's Chinese summary, then the English detail.
"""

from __future__ import annotations

import re

from harvest.errors import API_CODES, HarvestError

V = r"(?P<v>'.*'|\".*\")"  # a quoted value, as `shown()` and !r print it

_TYPES = {"a string": "字符串", "an integer": "整数", "an array of strings": "字符串数组"}

# (English message pattern, Chinese template); fields named in the pattern fill the template.
CATALOGUE: list[tuple[str, str]] = [
    # parameters (api/actions.py, api/envelope.py, api/events.py)
    (r"(?P<p>\w+) must be (?P<t>a string|an integer|an array of strings), got (?P<g>.*)", "{p} 必须是{t},实际为 {g}"),
    (r"(?P<n>.+) is not a parameter of (?P<a>\w+) \(its parameters: (?P<l>.*)\)", "{n} 不是 {a} 的参数(其参数为:{l})"),
    (r"(?P<p>\w+) is required by (?P<a>\w+)", "{a} 缺少必填参数 {p}"),
    (r"parameter (?P<k>.+) appears twice in the JSON body", "参数 {k} 在 JSON 请求体中出现了两次"),
    (r"the JSON body contains (?P<n>.+), which is not valid JSON", "JSON 请求体包含 {n},这不是合法的 JSON"),
    (r"the request body is not UTF-8 text", "请求体不是 UTF-8 文本"),
    (r"the request body is not valid JSON: (?P<d>.*)", "请求体不是合法的 JSON:{d}"),
    (r"the request body must be a JSON object of parameters", "请求体必须是由参数组成的 JSON 对象"),
    (r"query parameter name (?P<k>.+) is not a valid parameter path", "查询参数名 {k} 不是合法的参数路径"),
    (r"query parameter (?P<k>.+) is given both as a value and a list", "查询参数 {k} 同时以值和列表的形式给出"),
    (r"(?:query )?parameter (?P<k>.+) is given more than once", "参数 {k} 重复出现"),
    (r"the event's (?P<w>headers|query string parameters) are not an object", "事件的 {w} 不是对象"),
    (r"the event's body is not a string", "事件的 body 不是字符串"),
    (r"the event says isBase64Encoded, but its body is not Base64", "事件声明了 isBase64Encoded,但 body 不是 Base64"),
    (r"the event is not an HTTP request object", "事件不是 HTTP 请求对象"),
    # signatures (api/tc3.py, api/auth.py)
    (r"Authorization must look like .*", "Authorization 的格式应为 'TC3-HMAC-SHA256 Credential=<SecretId>/<yyyy-mm-dd>/<service>/tc3_request, SignedHeaders=content-type;host, Signature=<64 位十六进制>'"),
    (r"SignedHeaders must include at least content-type and host", "SignedHeaders 至少要包含 content-type 和 host"),
    (r"the Authorization header is missing", "缺少 Authorization 请求头"),
    (r"SecretId (?P<s>.+) is not known to this service", "本服务不认识 SecretId {s}"),
    (r"(?P<h>X-TC-Timestamp|Timestamp) (?P<t>\d+) is (?P<d>[+-]\d+) s from server time; at most (?P<m>\d+) s of clock skew is allowed", "{h} {t} 与服务器时间相差 {d} 秒,最多允许 {m} 秒"),
    (r"the credential scope names service (?P<s>.+); this endpoint serves (?P<e>.+)", "凭证范围中的服务为 {s},本接入点服务于 {e}"),
    (r"the credential date (?P<d>\S+) is not the UTC date of X-TC-Timestamp \((?P<u>\S+)\)", "凭证日期 {d} 不是 X-TC-Timestamp 的 UTC 日期({u})"),
    (r"The provided credentials could not be validated\. Please check your signature is correct\.", "签名校验失败,请检查签名是否正确。"),
    (r"this signature was already used: the request is a replay; sign it afresh", "该签名已被使用过(重放请求),请重新签名"),
    (r"the X-TC-Timestamp header is missing", "缺少 X-TC-Timestamp 请求头"),
    (r"(?P<h>X-TC-Timestamp|Timestamp) must be integer Unix seconds, got (?P<v>.*)", "{h} 必须是整数 Unix 秒,实际为 {v}"),
    (r"(?P<a>\w+) is limited to (?P<r>[\d.]+) requests per second per SecretId; slow down and retry", "{a} 每个 SecretId 每秒最多请求 {r} 次,请降低频率后重试"),
    # the job and its window (domain/validation.py, domain/timeparse.py, domain/registry.py)
    (r"(?P<f>ID|IDs) " + V + r" is invalid: use 1-128 characters of A-Z, a-z, 0-9, '_' and '-'", "{f} {v} 无效:只能使用 1-128 个 A-Z、a-z、0-9、'_' 和 '-' 字符"),
    (r"(?P<f>ChannelName|EndpointName) " + V + r" is invalid: names are 1-128 of A-Z a-z 0-9 _ -", "{f} {v} 无效:名称为 1-128 个 A-Z a-z 0-9 _ - 字符"),
    (r"ChannelName " + V + r" is not a known channel", "ChannelName {v} 不是已知频道"),
    (r"EndpointName " + V + r" is not an endpoint of channel (?P<c>.+) \(known: (?P<k>.*)\)", "EndpointName {v} 不是频道 {c} 的端点(已有:{k})"),
    (r"TimeFormat " + V + r" is not supported: use 'Epoch seconds' or 'ISO-8601'", "不支持 TimeFormat {v}:请使用 'Epoch seconds' 或 'ISO-8601'"),
    (r"(?P<f>\w+) " + V + r" looks like epoch milliseconds; send epoch seconds", "{f} {v} 看起来是毫秒时间戳,请使用秒"),
    (r"(?P<f>\w+) " + V + r" is not epoch seconds: expected a positive integer string like '1700000000'", "{f} {v} 不是 Unix 秒:应为正整数字符串,例如 '1700000000'"),
    (r"the window from StartTime to EndTime is (?P<s>\d+) s; at most (?P<m>\d+) s \(24 h\) is allowed", "StartTime 到 EndTime 的时间窗为 {s} 秒,最多允许 {m} 秒(24 小时)"),
    (r"EndTime is (?P<s>\d+) s in the future; a harvest can only cover time that has passed", "EndTime 在 {s} 秒之后;录制只能覆盖已经过去的时间"),
    (r"StartTime is (?P<s>\d+) s ago, older than endpoint (?P<e>.+) keeps \(its startover window is (?P<w>\d+) s\)", "StartTime 在 {s} 秒之前,早于端点 {e} 保留的范围(其时移窗口为 {w} 秒)"),
    (r"PageNum is (?P<n>-?\d+); .*", "PageNum 为 {n},取值范围为 1 到 1000"),
    (r"IDs holds (?P<n>\d+) IDs; give between 1 and (?P<m>\d+)", "IDs 包含 {n} 个 ID,应为 1 到 {m} 个"),
    # CallbackURL
    (r"CallbackURL is longer than (?P<n>\d+) characters", "CallbackURL 超过 {n} 个字符"),
    (r"CallbackURL contains whitespace or a control character", "CallbackURL 包含空白或控制字符"),
    (r"CallbackURL " + V + r" is not a valid URL", "CallbackURL {v} 不是合法的 URL"),
    (r"CallbackURL " + V + r" must be an http:// or https:// URL with a host", "CallbackURL {v} 必须是带主机名的 http:// 或 https:// URL"),
    (r"CallbackURL host " + V + r" is not a valid host name", "CallbackURL 主机 {v} 不是合法的主机名"),
    (r"CallbackURL host " + V + r" does not resolve: (?P<d>.*)", "CallbackURL 主机 {v} 无法解析:{d}"),
    (r"CallbackURL host " + V + r" resolves to no address", "CallbackURL 主机 {v} 没有解析到任何地址"),
    (r"CallbackURL host " + V + r" is refused: (?P<a>\S+) is a loopback, private, link-local or otherwise non-public address", "CallbackURL 主机 {v} 被拒绝:{a} 是环回、私有、链路本地或其他非公网地址"),
    (r"CallbackURL host " + V + r" is refused: (?P<d>.*)", "CallbackURL 主机 {v} 被拒绝:{d}"),
    # Destination and Manifest (domain/destination.py)
    (r"(?P<f>Manifest|Destination path) " + V + r" contains a control character", "{f} {v} 包含控制字符"),
    (r"(?P<f>Manifest|Destination path) " + V + r" contains a backslash; use '/' between parts", "{f} {v} 包含反斜杠,请用 '/' 分隔"),
    (r"(?P<f>Manifest|Destination path) " + V + r" must be relative: remove the leading '/'", "{f} {v} 必须是相对路径:请去掉开头的 '/'"),
    (r"(?P<f>Manifest|Destination path) is longer than (?P<n>\d+) bytes \(UTF-8\)", "{f} 超过 {n} 字节(UTF-8)"),
    (r"(?P<f>Manifest|Destination path) " + V + r" contains a '\.\.' segment", "{f} {v} 包含 '..' 路径段"),
    (r"(?P<f>Manifest|Destination path) " + V + r" names no object once '//' and '\./' are folded away", "{f} {v} 去掉 '//' 和 './' 后不指向任何对象"),
    (r"Manifest " + V + r" names a folder; give a file name such as 'index.m3u8'", "Manifest {v} 是一个目录,请给出文件名,例如 'index.m3u8'"),
    (r"Destination " + V + r" contains a space or control character", "Destination {v} 包含空格或控制字符"),
    (r"Destination " + V + r" must be a COS URL like (?P<e>\S+)", "Destination {v} 必须是 COS URL,例如 {e}"),
    (r"Destination must not carry a query string or fragment", "Destination 不能带查询串或片段"),
    (r"Destination must not carry user information \('user@'\)", "Destination 不能带用户信息('user@')"),
    (r"Destination must not carry a port: COS listens on the default HTTPS port", "Destination 不能带端口:COS 使用默认 HTTPS 端口"),
    (r"Destination host " + V + r" is not a COS bucket host like .*", "Destination 主机 {v} 不是 COS 存储桶域名(<name>-<appid>.cos.<region>.myqcloud.com)"),
    (r"Destination bucket " + V + r" is longer than (?P<n>\d+) characters", "Destination 存储桶 {v} 超过 {n} 个字符"),
    (r"Destination bucket is in region (?P<r>.+); this service writes only to (?P<s>.+)", "Destination 存储桶位于地域 {r},本服务只写入 {s}"),
    (r"Destination bucket " + V + r" is not one this service may write to", "本服务不能写入 Destination 存储桶 {v}"),
    (r"Destination path is not valid percent-encoded UTF-8", "Destination 路径不是合法的百分号编码 UTF-8"),
    (r"Destination is required: .*", "缺少 Destination:本服务没有默认目标(HARVEST_DEFAULT_DESTINATION)"),
    # the job store
    (r"harvest job (?P<j>\S+) already exists", "任务 {j} 已存在"),
    (r"harvest job (?P<j>\S+) not found", "找不到任务 {j}"),
    (r"harvest job (?P<j>\S+) is Running; only Completed or Failed jobs.*", "任务 {j} 正在运行(Running),只能删除已完成(Completed)或失败(Failed)的任务"),
]
_COMPILED = [(re.compile(pattern, re.DOTALL), template) for pattern, template in CATALOGUE]


def translate(message: str) -> str | None:
    """The Chinese rendering of an English message the catalogue knows, else None."""
    for pattern, template in _COMPILED:
        match = pattern.fullmatch(message)
        if match is not None:
            fields = {name: _TYPES.get(value, value) for name, value in match.groupdict().items()}
            return template.format(**fields)
    return None


def message_for(error: HarvestError, language: str) -> str:
    """`error`'s message in `language` (zh-CN or en-US)."""
    if language != "zh-CN":
        return error.message
    return error.zh or translate(error.message) or f"{API_CODES[error.code][1]}:{error.message}"
