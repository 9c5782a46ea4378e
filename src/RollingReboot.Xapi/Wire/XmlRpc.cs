using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Xml;

namespace RollingReboot.Xapi.Wire;

/// <summary>
/// XML-RPC as XAPI speaks it, the client's half only: encode a methodCall, decode a methodResponse. Values
/// decode to the same <see cref="JsonNode"/> tree JSON-RPC gives, so the typed layer reads one shape. XAPI
/// sends int64 as strings over XML-RPC; the typed layer accepts both. The lab has its own server half
/// (RollingReboot.Lab.Xapi.XmlRpcServer), so the two cannot share a mistake; EncodeCall is pinned against
/// literal XML in the tests.
/// </summary>
public static class XmlRpc
{
    public static string EncodeCall(string method, IReadOnlyList<object?> parameters)
    {
        var sb = new StringBuilder("<?xml version=\"1.0\"?><methodCall><methodName>");
        sb.Append(Escape(method)).Append("</methodName><params>");
        foreach (var p in parameters)
        {
            sb.Append("<param>");
            EncodeValue(sb, p);
            sb.Append("</param>");
        }

        return sb.Append("</params></methodCall>").ToString();
    }

    private static void EncodeValue(StringBuilder sb, object? value)
    {
        sb.Append("<value>");
        switch (value)
        {
            case null:
                sb.Append("<string></string>");
                break;
            case string s:
                sb.Append("<string>").Append(Escape(s)).Append("</string>");
                break;
            case bool b:
                sb.Append("<boolean>").Append(b ? '1' : '0').Append("</boolean>");
                break;
            case int or long:
                // XAPI encodes int64 as a string over XML-RPC.
                sb.Append("<string>").Append(Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture)).Append("</string>");
                break;
            case double d:
                sb.Append("<double>").Append(d.ToString("R", CultureInfo.InvariantCulture)).Append("</double>");
                break;
            case DateTimeOffset dt:
                sb.Append("<dateTime.iso8601>").Append(XapiDateTime.Format(dt)).Append("</dateTime.iso8601>");
                break;
            case JsonNode node:
                EncodeJson(sb, node);
                break;
            case IReadOnlyDictionary<string, string> map:
                sb.Append("<struct>");
                foreach (var (k, v) in map)
                {
                    sb.Append("<member><name>").Append(Escape(k)).Append("</name>");
                    EncodeValue(sb, v);
                    sb.Append("</member>");
                }

                sb.Append("</struct>");
                break;
            case System.Collections.IEnumerable list:
                sb.Append("<array><data>");
                foreach (var item in list)
                {
                    EncodeValue(sb, item);
                }

                sb.Append("</data></array>");
                break;
            default:
                sb.Append("<string>").Append(Escape(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "")).Append("</string>");
                break;
        }

        sb.Append("</value>");
    }

    private static void EncodeJson(StringBuilder sb, JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                sb.Append("<struct>");
                foreach (var (k, v) in o)
                {
                    sb.Append("<member><name>").Append(Escape(k)).Append("</name>");
                    EncodeValue(sb, v);
                    sb.Append("</member>");
                }

                sb.Append("</struct>");
                break;
            case JsonArray a:
                sb.Append("<array><data>");
                foreach (var v in a)
                {
                    EncodeValue(sb, v);
                }

                sb.Append("</data></array>");
                break;
            case JsonValue v when v.TryGetValue<bool>(out var b):
                sb.Append("<boolean>").Append(b ? '1' : '0').Append("</boolean>");
                break;
            case JsonValue v when v.TryGetValue<long>(out var l):
                sb.Append("<string>").Append(l.ToString(CultureInfo.InvariantCulture)).Append("</string>");
                break;
            case JsonValue v when v.TryGetValue<double>(out var d):
                sb.Append("<double>").Append(d.ToString("R", CultureInfo.InvariantCulture)).Append("</double>");
                break;
            case JsonValue v when v.TryGetValue<string>(out var text) && LooksLikeDateTime(text):
                // XAPI datetimes travel as dateTime.iso8601 over XML-RPC.
                sb.Append("<dateTime.iso8601>").Append(text).Append("</dateTime.iso8601>");
                break;
            default:
                sb.Append("<string>").Append(Escape(node.ToString())).Append("</string>");
                break;
        }
    }

    private static bool LooksLikeDateTime(string s) =>
        s.Length == 18 && s[8] == 'T' && s[17] == 'Z' && s[11] == ':' && s[14] == ':' && s[..8].All(char.IsAsciiDigit);

    /// <summary>Decodes a methodResponse: XAPI's Status/Value/ErrorDescription struct, or a plain fault.</summary>
    public static JsonNode? DecodeResponse(string xml, string method)
    {
        XmlDocument doc;
        try
        {
            doc = Load(xml);
        }
        catch (XmlException e)
        {
            throw new XapiException(XapiException.ProtocolError, ["malformed XML-RPC response: " + e.Message], method, e);
        }

        var root = doc.DocumentElement;
        if (root is null || root.Name != "methodResponse")
        {
            throw new XapiException(XapiException.ProtocolError, ["not an XML-RPC methodResponse"], method);
        }

        var fault = root["fault"];
        if (fault is not null)
        {
            // xapi never answers a call with a fault; hosts before 1.9.0 did for XML they could not parse (faultCode 1,
            // "Failed to parse supplied XML"). It is the wire failing, not an XAPI error code.
            var f = Decode(FirstValue(fault, method), method) as JsonObject;
            throw new XapiException(XapiException.ProtocolError, [$"XML-RPC fault {f?["faultCode"]?.ToString() ?? "?"}: {f?["faultString"]?.ToString() ?? ""}"], method);
        }

        var value = root["params"]?["param"]?["value"];
        if (value is null)
        {
            throw new XapiException(XapiException.ProtocolError, ["XML-RPC response has no value"], method);
        }

        var decoded = Decode(value, method);
        if (decoded is not JsonObject result || result["Status"] is not JsonValue status)
        {
            throw new XapiException(XapiException.ProtocolError, ["XML-RPC response is not a XenAPI Status struct"], method);
        }

        if (status.ToString() == "Success")
        {
            return result["Value"]?.DeepClone();
        }

        var description = result["ErrorDescription"] as JsonArray;
        var parts = description?.Select(n => n?.ToString() ?? "").ToList() ?? [];
        throw new XapiException(parts.Count > 0 ? parts[0] : "INTERNAL_ERROR", parts.Skip(1).ToList(), method);
    }

    /// <summary>Decodes one XML-RPC value (<c>&lt;value&gt;...&lt;/value&gt;</c>), as a task's result holds it.</summary>
    public static JsonNode? DecodeValue(string valueXml, string method)
    {
        XmlDocument doc;
        try
        {
            doc = Load(valueXml);
        }
        catch (XmlException e)
        {
            throw new XapiException(XapiException.ProtocolError, ["malformed XML-RPC value: " + e.Message], method, e);
        }

        return doc.DocumentElement is { Name: "value" } value
            ? Decode(value, method)
            : throw new XapiException(XapiException.ProtocolError, ["not an XML-RPC value"], method);
    }

    private static XmlDocument Load(string xml)
    {
        var doc = new XmlDocument { XmlResolver = null };
        using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null });
        doc.Load(reader);
        return doc;
    }

    private static XmlElement FirstValue(XmlElement parent, string method) =>
        parent["value"] ?? throw new XapiException(XapiException.ProtocolError, ["fault without value"], method);

    private static JsonNode? Decode(XmlElement value, string method)
    {
        var typed = value.ChildNodes.OfType<XmlElement>().FirstOrDefault();
        if (typed is null)
        {
            // No type element: a string.
            return JsonValue.Create(value.InnerText);
        }

        switch (typed.Name)
        {
            case "string":
                return JsonValue.Create(typed.InnerText);
            case "int" or "i4" or "i8":
                return long.TryParse(typed.InnerText.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)
                    ? JsonValue.Create(l)
                    : throw new XapiException(XapiException.ProtocolError, ["bad integer in XML-RPC"], method);
            case "boolean":
                return JsonValue.Create(typed.InnerText.Trim() is "1" or "true");
            case "double":
                return double.TryParse(typed.InnerText.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                    ? JsonValue.Create(d)
                    : throw new XapiException(XapiException.ProtocolError, ["bad double in XML-RPC"], method);
            case "dateTime.iso8601":
                return JsonValue.Create(typed.InnerText.Trim());
            case "base64":
                return JsonValue.Create(typed.InnerText.Trim());
            case "nil":
                return null;
            case "struct":
                var o = new JsonObject();
                foreach (var m in typed.ChildNodes.OfType<XmlElement>().Where(e => e.Name == "member"))
                {
                    var name = m["name"]?.InnerText ?? throw new XapiException(XapiException.ProtocolError, ["struct member without name"], method);
                    var v = m["value"];
                    o[name] = v is null ? null : Decode(v, method);
                }

                return o;
            case "array":
                var a = new JsonArray();
                var data = typed["data"];
                if (data is not null)
                {
                    foreach (var v in data.ChildNodes.OfType<XmlElement>().Where(e => e.Name == "value"))
                    {
                        a.Add(Decode(v, method));
                    }
                }

                return a;
            default:
                throw new XapiException(XapiException.ProtocolError, ["unknown XML-RPC type " + typed.Name], method);
        }
    }

    private static string Escape(string s) =>
        s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
