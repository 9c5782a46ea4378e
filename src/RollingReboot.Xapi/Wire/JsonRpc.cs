using System.Text.Json;
using System.Text.Json.Nodes;

namespace RollingReboot.Xapi.Wire;

/// <summary>JSON-RPC 2.0 as XAPI speaks it, with both error shapes XAPI produces.</summary>
public static class JsonRpc
{
    public static string EncodeCall(string method, IReadOnlyList<object?> parameters, long id)
    {
        var ps = new JsonArray();
        foreach (var p in parameters)
        {
            ps.Add(ToNode(p));
        }

        var call = new JsonObject { ["jsonrpc"] = "2.0", ["method"] = method, ["params"] = ps, ["id"] = id };
        return call.ToJsonString();
    }

    public static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        JsonNode n => n.DeepClone(),
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create((long)i),
        long l => JsonValue.Create(l),
        double d => JsonValue.Create(d),
        DateTimeOffset dt => JsonValue.Create(XapiDateTime.Format(dt)),
        IReadOnlyDictionary<string, string> map => new JsonObject(map.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        System.Collections.IEnumerable list => new JsonArray(list.Cast<object?>().Select(ToNode).ToArray()),
        _ => JsonValue.Create(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)),
    };

    /// <summary>
    /// Decodes a reply: <c>result</c>, or <c>error</c> as an object (<c>message</c> = code, <c>data</c> = params,
    /// possibly missing or not an array) or as a bare array (pre-dispatch errors, JSON-RPC 1.0).
    /// </summary>
    public static JsonNode? DecodeResponse(string body, string method)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(body);
        }
        catch (JsonException e)
        {
            throw new XapiException(XapiException.ProtocolError, ["malformed JSON-RPC response: " + e.Message], method, e);
        }

        if (root is not JsonObject o)
        {
            throw new XapiException(XapiException.ProtocolError, ["JSON-RPC response is not an object"], method);
        }

        if (o.TryGetPropertyValue("error", out var error) && error is not null)
        {
            throw ErrorToException(error, method);
        }

        if (!o.TryGetPropertyValue("result", out var result))
        {
            throw new XapiException(XapiException.ProtocolError, ["JSON-RPC response has neither result nor error"], method);
        }

        return result;
    }

    /// <summary>
    /// Decodes a reply from its UTF-8 bytes and maps <c>result</c> while the parsed document is alive: no DOM, no
    /// string of the whole reply (a pool's VMs can be tens of megabytes). Errors as in <see cref="DecodeResponse(string, string)"/>.
    /// </summary>
    public static T DecodeResponse<T>(ReadOnlyMemory<byte> utf8, string method, Func<JsonElement, T> map)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8);
        }
        catch (JsonException e)
        {
            throw new XapiException(XapiException.ProtocolError, ["malformed JSON-RPC response: " + e.Message], method, e);
        }

        using (doc)
        {
            var o = doc.RootElement;
            if (o.ValueKind != JsonValueKind.Object)
            {
                throw new XapiException(XapiException.ProtocolError, ["JSON-RPC response is not an object"], method);
            }

            if (o.TryGetProperty("error", out var error) && error.ValueKind != JsonValueKind.Null)
            {
                throw ErrorToException(JsonNode.Parse(error.GetRawText())!, method);
            }

            if (!o.TryGetProperty("result", out var result))
            {
                throw new XapiException(XapiException.ProtocolError, ["JSON-RPC response has neither result nor error"], method);
            }

            return map(result);
        }
    }

    /// <summary>
    /// Decodes a reply whose result is a map of records (<c>get_all_records</c>) one record at a time: a reader walks
    /// the UTF-8 bytes and each record is parsed alone, mapped, and dropped, so nothing the size of the reply is
    /// built besides the bytes themselves. Errors as in <see cref="DecodeResponse(string, string)"/>.
    /// </summary>
    public static List<T> DecodeRecords<T>(ReadOnlyMemory<byte> utf8, string method, Func<string, JsonElement, T> map)
    {
        List<T>? records = null;
        XapiException? error = null;
        var sawResult = false;
        try
        {
            var reader = new Utf8JsonReader(utf8.Span);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new XapiException(XapiException.ProtocolError, ["JSON-RPC response is not an object"], method);
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                if (name == "error" && reader.TokenType != JsonTokenType.Null)
                {
                    using var e = JsonDocument.ParseValue(ref reader);
                    error = ErrorToException(JsonNode.Parse(e.RootElement.GetRawText())!, method);
                }
                else if (name == "result")
                {
                    sawResult = true;
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        continue;
                    }

                    records = [];
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var r = reader.GetString() ?? "";
                        reader.Read();
                        if (reader.TokenType == JsonTokenType.StartObject)
                        {
                            using var record = JsonDocument.ParseValue(ref reader);
                            records.Add(map(r, record.RootElement));
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }
                }
                else
                {
                    reader.Skip();
                }
            }
        }
        catch (JsonException e)
        {
            throw new XapiException(XapiException.ProtocolError, ["malformed JSON-RPC response: " + e.Message], method, e);
        }

        if (error is not null)
        {
            throw error;
        }

        if (!sawResult)
        {
            throw new XapiException(XapiException.ProtocolError, ["JSON-RPC response has neither result nor error"], method);
        }

        return records ?? throw new XapiException(XapiException.ProtocolError, [method + " did not return a map"], method);
    }

    private static XapiException ErrorToException(JsonNode error, string method)
    {
        switch (error)
        {
            case JsonArray a:
                var parts = a.Select(Text).ToList();
                return new XapiException(parts.Count > 0 && parts[0].Length > 0 ? parts[0] : "INTERNAL_ERROR", parts.Skip(1).ToList(), method);
            case JsonObject e:
                var code = e["message"] is JsonValue m ? Text(m) : "INTERNAL_ERROR";
                var data = e["data"] switch
                {
                    JsonArray d => d.Select(Text).ToList(),
                    null => [],
                    JsonNode other => [Text(other)],
                };
                return new XapiException(code.Length > 0 ? code : "INTERNAL_ERROR", data, method);
            default:
                return new XapiException(Text(error) is { Length: > 0 } t ? t : "INTERNAL_ERROR", [], method);
        }
    }

    private static string Text(JsonNode? n) => n switch
    {
        null => "",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => n.ToJsonString(),
    };
}
