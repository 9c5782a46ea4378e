using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml;
using System.Xml.Linq;

namespace RollingReboot.Lab.Xapi;

/// <summary>A methodCall the lab cannot read: the handler answers it with HTTP 500, as xapi does.</summary>
internal sealed class MalformedXmlRpcException : Exception
{
    public MalformedXmlRpcException() : this("malformed XML-RPC")
    {
    }

    public MalformedXmlRpcException(string message) : base(message)
    {
    }

    public MalformedXmlRpcException(string message, Exception inner) : base(message, inner)
    {
    }
}

/// <summary>
/// The server half of XML-RPC as xapi speaks it, written for the lab alone: the client's codec
/// (RollingReboot.Xapi.Wire.XmlRpc) is not used here, so a mistake in how the client encodes a call
/// cannot be mirrored by the lab decoding it the same wrong way.
/// </summary>
/// <remarks>
/// Read from xapi-project/xen-api (e2ee48d) and the library it uses for the wire, mirage/ocaml-rpc
/// (6fe5b65), src/lib/xmlrpc.ml: ocaml/xapi/api_server.ml <c>callback</c> parses with
/// <c>Xmlrpc.call_of_string</c> and answers with <c>Xmlrpc.string_of_response</c> (not strict), except
/// <c>system.listMethods</c>, whose value goes out bare in the param; xmlrpc.ml <c>add_value</c> and
/// <c>add_response</c> give the shapes below. Types come from ocaml/idl/ocaml_backend/gen_api.ml (datetimes as
/// <c>DateTime (Date.to_rfc3339 x)</c>), gen_server.ml (void as <c>String ""</c>), ocaml/xapi-types/event_types.ml
/// (<c>valid_ref_counts</c> as <c>Int32</c>) and doc/content/xen-api/wire-protocol.md. Encoding:
/// <list type="bullet">
/// <item>string: bare <c>&lt;value&gt;text&lt;/value&gt;</c>, no <c>&lt;string&gt;</c> element; characters XML cannot
/// carry are dropped, as <c>encode_buf</c> drops control characters;</item>
/// <item>int64: bare digits too (<c>Int</c> without <c>strict</c>), so an XML-RPC client reads a string; an
/// Int32 (here: a CLR <see cref="int"/>) as <c>&lt;i4&gt;</c>;</item>
/// <item><c>&lt;boolean&gt;1/0</c>, <c>&lt;double&gt;</c> printed as <c>%.16g</c>, <c>&lt;dateTime.iso8601&gt;</c>,
/// <c>&lt;nil/&gt;</c>, <c>&lt;array&gt;&lt;data&gt;</c>, <c>&lt;struct&gt;&lt;member&gt;</c>;</item>
/// <item>the reply: a struct <c>Status</c> "Success" + <c>Value</c>, or "Failure" + <c>ErrorDescription</c> (an array of
/// strings: the code, then its parameters).</item>
/// </list>
/// Decoding follows <c>Xmlrpc.Parser</c>: a <c>&lt;value&gt;</c> with only text is a string, whitespace kept;
/// <c>int</c>/<c>i4</c>/<c>i8</c> are int64; a boolean is true only for "1"; <c>&lt;params&gt;</c> is required;
/// names and method names are not trimmed; an empty <c>&lt;int/&gt;</c>, <c>&lt;boolean/&gt;</c> or
/// <c>&lt;double/&gt;</c> is an error, an empty <c>&lt;string/&gt;</c>, <c>&lt;array/&gt;</c> or <c>&lt;struct/&gt;</c> is not.
/// Just over 400 lines: the decoder and the encoder of one wire format, kept side by side.
/// </remarks>
internal static class XmlRpcServer
{
    private const string Declaration = "<?xml version=\"1.0\"?>";

    /// <summary>The method name and parameters of a methodCall, as the same JSON tree JSON-RPC gives the sim.</summary>
    public static (string Method, List<JsonNode?> Parameters) DecodeCall(string body)
    {
        XDocument doc;
        try
        {
            var settings = new XmlReaderSettings
            {
                DtdProcessing = DtdProcessing.Prohibit,
                XmlResolver = null,
                IgnoreComments = true,
                IgnoreProcessingInstructions = true,
            };
            using var reader = XmlReader.Create(new StringReader(body), settings);
            doc = XDocument.Load(reader, LoadOptions.PreserveWhitespace);
        }
        catch (XmlException e)
        {
            throw new MalformedXmlRpcException("not XML: " + e.Message, e);
        }

        var root = doc.Root ?? throw new MalformedXmlRpcException("empty document");
        Expect(root, "methodCall");
        var parts = Elements(root);
        if (parts.Count != 2)
        {
            throw new MalformedXmlRpcException("a methodCall is a methodName and params");
        }

        Expect(parts[0], "methodName");
        var method = Text(parts[0]);
        Expect(parts[1], "params");
        var parameters = new List<JsonNode?>();
        foreach (var param in Elements(parts[1]))
        {
            Expect(param, "param");
            parameters.Add(DecodeValue(Single(param)));
        }

        return (method, parameters);
    }

    /// <summary>A methodResponse for a call that succeeded.</summary>
    public static string Success(JsonNode? value) =>
        Response(Struct(("Status", new XElement("value", "Success")), ("Value", EncodeValue(value))));

    /// <summary>A methodResponse for a call that failed: the code, then its parameters.</summary>
    public static string Failure(string code, IEnumerable<string> parameters) =>
        Response(Struct(
            ("Status", new XElement("value", "Failure")),
            ("ErrorDescription", new XElement("value", new XElement("array", new XElement("data",
                new[] { code }.Concat(parameters).Select(p => new XElement("value", Clean(p)))))))));

    /// <summary>
    /// An XML-RPC fault, as xapi before JSON-RPC (1.9.0, 2013) answered a body it could not parse:
    /// <c>XMLRPC.Fault(1l, "Failed to parse supplied XML")</c> in api_server.ml <c>callback</c> (xen-api commit cc8f80e4^),
    /// written by xen-api-libs http-svr/xMLRPC.ml <c>To.methodResponse</c> (<c>faultCode</c> as <c>&lt;i4&gt;</c>, the string
    /// untyped) through xml-light, without an XML declaration.
    /// </summary>
    public static string Fault(int code, string text)
    {
        var fault = new XElement("methodResponse", new XElement("fault", Struct(
            ("faultCode", new XElement("value", new XElement("i4", code.ToString(CultureInfo.InvariantCulture)))),
            ("faultString", new XElement("value", Clean(text))))));
        var settings = new XmlWriterSettings { OmitXmlDeclaration = true, Indent = false, NewLineHandling = NewLineHandling.None };
        var sb = new StringBuilder();
        using (var writer = XmlWriter.Create(sb, settings))
        {
            fault.WriteTo(writer);
        }

        return sb.ToString();
    }

    /// <summary>The value alone in the param, no Status struct: how xapi answers <c>system.listMethods</c>.</summary>
    public static string Bare(JsonNode? value) => Response(EncodeValue(value));

    private static string Response(XElement value)
    {
        var response = new XElement("methodResponse", new XElement("params", new XElement("param", value)));
        var settings = new XmlWriterSettings { OmitXmlDeclaration = true, Indent = false, NewLineHandling = NewLineHandling.None };
        var text = new StringBuilder(Declaration);
        using (var writer = XmlWriter.Create(text, settings))
        {
            response.WriteTo(writer);
        }

        return text.ToString();
    }

    private static XElement Struct(params (string Name, XElement Value)[] members) =>
        new("value", new XElement("struct", members.Select(m => new XElement("member", new XElement("name", Clean(m.Name)), m.Value))));

    /// <summary>One value as XML-RPC text, as xapi stores an Async task's result.</summary>
    internal static string ValueXml(JsonNode? value) => EncodeValue(value).ToString(SaveOptions.DisableFormatting);

    private static XElement EncodeValue(JsonNode? node) => node switch
    {
        null => new XElement("value", new XElement("nil")),
        JsonObject o => Struct(o.Select(kv => (kv.Key, EncodeValue(kv.Value))).ToArray()),
        JsonArray a => new XElement("value", new XElement("array", new XElement("data", a.Select(EncodeValue)))),
        JsonValue v => EncodeScalar(v),
        _ => throw new InvalidOperationException("unexpected JSON node " + node.GetType().Name),
    };

    private static XElement EncodeScalar(JsonValue v)
    {
        if (v.TryGetValue<JsonElement>(out var element))
        {
            return element.ValueKind switch
            {
                JsonValueKind.String => EncodeString(element.GetString() ?? ""),
                JsonValueKind.True => Typed("boolean", "1"),
                JsonValueKind.False => Typed("boolean", "0"),
                JsonValueKind.Number when element.TryGetInt64(out var l) => Int64(l),
                JsonValueKind.Number => Double(element.GetDouble()),
                JsonValueKind.Null => new XElement("value", new XElement("nil")),
                _ => EncodeString(element.GetRawText()),
            };
        }

        if (v.TryGetValue<string>(out var s))
        {
            return EncodeString(s);
        }

        if (v.TryGetValue<bool>(out var b))
        {
            return Typed("boolean", b ? "1" : "0");
        }

        if (v.TryGetValue<int>(out var i))
        {
            // ocaml-rpc's Int32, which xapi uses only for event.from's valid_ref_counts.
            return Typed("i4", i.ToString(CultureInfo.InvariantCulture));
        }

        if (v.TryGetValue<long>(out var l64))
        {
            return Int64(l64);
        }

        if (v.TryGetValue<double>(out var d))
        {
            return Double(d);
        }

        if (v.TryGetValue<float>(out var f))
        {
            return Double(f);
        }

        return v.GetValueKind() switch
        {
            JsonValueKind.Number => Int64OrDouble(v.ToJsonString()),
            JsonValueKind.True => Typed("boolean", "1"),
            JsonValueKind.False => Typed("boolean", "0"),
            _ => EncodeString(v.ToString()),
        };
    }

    private static XElement Int64OrDouble(string number) =>
        long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
            ? Int64(l)
            : Double(double.Parse(number, NumberStyles.Float, CultureInfo.InvariantCulture));

    // Bare digits: xapi's int64 is ocaml-rpc's Int, which non-strict add_value writes untyped.
    private static XElement Int64(long value) => new("value", value.ToString(CultureInfo.InvariantCulture));

    private static XElement Double(double value) => Typed("double", PrintfG16(value));

    private static XElement EncodeString(string s) =>
        IsXapiDateTime(s) ? Typed("dateTime.iso8601", s) : new XElement("value", Clean(s));

    private static XElement Typed(string type, string text) => new("value", new XElement(type, text));

    /// <summary>
    /// The sim keeps datetimes as the strings JSON-RPC sends (<c>Date.to_rfc3339</c>: 20260101T00:00:00Z);
    /// over XML-RPC xapi types them. Any other string of exactly this shape (a name label, a map value) would
    /// be typed too, where xapi would send it untyped.
    /// </summary>
    private static bool IsXapiDateTime(string s) =>
        s.Length == 18 && DateTime.TryParseExact(s, "yyyyMMdd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out _);

    /// <summary>C's <c>%.16g</c>, as ocaml-rpc prints doubles (.NET's G16 picks fixed or exponent form by the same rule).</summary>
    private static string PrintfG16(double d) =>
        double.IsNaN(d) ? "nan"
        : double.IsPositiveInfinity(d) ? "inf"
        : double.IsNegativeInfinity(d) ? "-inf"
        : d.ToString("G16", CultureInfo.InvariantCulture).Replace('E', 'e');

    /// <summary>Drops what XML 1.0 cannot carry; xapi's encoder drops control characters the same way.</summary>
    private static string Clean(string s)
    {
        if (s.All(XmlConvert.IsXmlChar))
        {
            return s;
        }

        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (XmlConvert.IsXmlChar(s[i]))
            {
                sb.Append(s[i]);
            }
            else if (i + 1 < s.Length && XmlConvert.IsXmlSurrogatePair(s[i + 1], s[i]))
            {
                sb.Append(s[i]).Append(s[i + 1]);
                i++;
            }
        }

        return sb.ToString();
    }

    private static JsonNode? DecodeValue(XElement value)
    {
        Expect(value, "value");
        var children = Elements(value, allowText: true);
        if (children.Count == 0)
        {
            // No type element: a string, whitespace and all (Parser.value).
            return JsonValue.Create(value.Value);
        }

        if (children.Count > 1 || value.Nodes().OfType<XText>().Any(t => !IsBlank(t.Value)))
        {
            throw new MalformedXmlRpcException("a value holds one typed element or text");
        }

        var typed = children[0];
        var name = typed.Name.LocalName;
        switch (name)
        {
            case "string":
                return JsonValue.Create(Text(typed));
            case "int" or "i4" or "i8":
                return long.TryParse(NonEmpty(typed), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                    ? JsonValue.Create(l)
                    : throw new MalformedXmlRpcException("bad integer");
            case "boolean":
                // Parser.make_bool: "1" is true, anything else false.
                return JsonValue.Create(NonEmpty(typed) == "1");
            case "double":
                return double.TryParse(NonEmpty(typed), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out var d)
                    ? JsonValue.Create(d)
                    : throw new MalformedXmlRpcException("bad double");
            case "dateTime.iso8601":
                return JsonValue.Create(NonEmpty(typed));
            case "base64":
                try
                {
                    return JsonValue.Create(Encoding.UTF8.GetString(Convert.FromBase64String(NonEmpty(typed))));
                }
                catch (FormatException e)
                {
                    throw new MalformedXmlRpcException("bad base64", e);
                }

            case "nil":
                return typed.Nodes().Any() ? throw new MalformedXmlRpcException("nil with content") : null;
            case "array":
                return DecodeArray(typed);
            case "struct":
                return DecodeStruct(typed);
            default:
                throw new MalformedXmlRpcException("unknown XML-RPC type " + name);
        }
    }

    private static JsonArray DecodeArray(XElement array)
    {
        var result = new JsonArray();
        if (!array.Nodes().Any())
        {
            return result;
        }

        // <array> holds <data> (whitespace alone is not an empty array for Parser.map_tags either).
        var data = Single(array);
        Expect(data, "data");
        foreach (var v in Elements(data))
        {
            result.Add(DecodeValue(v));
        }

        return result;
    }

    private static JsonObject DecodeStruct(XElement s)
    {
        var result = new JsonObject();
        foreach (var member in Elements(s))
        {
            Expect(member, "member");
            var parts = Elements(member);
            if (parts.Count != 2)
            {
                throw new MalformedXmlRpcException("a member is a name and a value");
            }

            Expect(parts[0], "name");
            var name = Text(parts[0]);
            var value = DecodeValue(parts[1]);

            // Parser.members keeps every member and List.assoc finds the first.
            result.TryAdd(name, value);
        }

        return result;
    }

    private static void Expect(XElement e, string name)
    {
        if (e.Name.LocalName != name)
        {
            throw new MalformedXmlRpcException($"<{e.Name.LocalName}> where <{name}> belongs");
        }
    }

    /// <summary>The element children; text between them must be whitespace unless the caller reads text itself.</summary>
    private static List<XElement> Elements(XElement parent, bool allowText = false)
    {
        if (!allowText && parent.Nodes().OfType<XText>().Any(t => !IsBlank(t.Value)))
        {
            throw new MalformedXmlRpcException($"text inside <{parent.Name.LocalName}>");
        }

        return parent.Elements().ToList();
    }

    private static XElement Single(XElement parent)
    {
        var children = Elements(parent);
        return children.Count == 1 ? children[0] : throw new MalformedXmlRpcException($"<{parent.Name.LocalName}> holds one element");
    }

    /// <summary>Character data only (Parser.get_data): an element inside is an error; nothing is trimmed.</summary>
    private static string Text(XElement e) =>
        e.HasElements ? throw new MalformedXmlRpcException($"element inside <{e.Name.LocalName}>") : e.Value;

    private static string NonEmpty(XElement e)
    {
        var text = Text(e);
        return text.Length > 0 ? text : throw new MalformedXmlRpcException($"empty <{e.Name.LocalName}>");
    }

    // Parser.is_empty: blanks are space, tab and newline (the XML parser has already turned CR LF into LF).
    private static bool IsBlank(string s) => s.All(c => c is ' ' or '\t' or '\n' or '\r');
}
