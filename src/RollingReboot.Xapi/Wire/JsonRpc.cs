using System.Buffers;
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
        var decoder = new RecordsDecoder<T>(method, map);
        decoder.Feed(utf8.Span, final: true);
        return decoder.Result();
    }

    /// <summary>
    /// <see cref="DecodeRecords{T}(ReadOnlyMemory{byte}, string, Func{string, JsonElement, T})"/> as the reply arrives:
    /// each record is mapped once its bytes are in, and only a window of the reply is held (64 KiB, more only for a
    /// record larger than that), never the whole of it (a pool's VM records are megabytes). The stream is read to its end.
    /// </summary>
    public static async Task<List<T>> DecodeRecordsAsync<T>(Stream utf8, string method, Func<string, JsonElement, T> map, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(utf8);
        var decoder = new RecordsDecoder<T>(method, map);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var length = 0;
            var start = 0;
            var first = true;
            var final = false;
            while (!final)
            {
                if (length == buffer.Length)
                {
                    // One record (or the envelope around it) longer than the window: a larger one.
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await utf8.ReadAsync(buffer.AsMemory(length), cancellationToken);
                final = read == 0;
                length += read;
                if (first)
                {
                    if (length < 3 && !final)
                    {
                        continue;
                    }

                    first = false;
                    start = buffer.AsSpan(0, length).StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
                }

                if (decoder.Done)
                {
                    // What follows the reply's object is not read (as from a buffer): drained, so the connection can be reused.
                    length = 0;
                    continue;
                }

                var consumed = decoder.Feed(buffer.AsSpan(start, length - start), final);
                var rest = length - start - consumed;
                buffer.AsSpan(start + consumed, rest).CopyTo(buffer);
                length = rest;
                start = 0;
            }

            return decoder.Result();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The records decoder over pieces of a reply: <see cref="Feed"/> takes what is complete (the envelope's members, each
    /// record whole) and says how much it took; the rest is given again with the bytes after it.
    /// </summary>
    private sealed class RecordsDecoder<T>(string method, Func<string, JsonElement, T> map)
    {
        private JsonReaderState _state;
        private Where _where;
        private List<T>? _records;
        private XapiException? _error;
        private bool _sawResult;

        private enum Where
        {
            Start,
            Envelope,
            Records,
            Done,
        }

        public bool Done => _where == Where.Done;

        /// <summary>Reads what it can; returns the bytes taken. With <paramref name="final"/>, what is incomplete is malformed.</summary>
        public int Feed(ReadOnlySpan<byte> utf8, bool final)
        {
            try
            {
                var reader = new Utf8JsonReader(utf8, final, _state);
                var taken = 0;
                while (_where != Where.Done && Step(ref reader, final))
                {
                    taken = (int)reader.BytesConsumed;
                    _state = reader.CurrentState;
                }

                return taken;
            }
            catch (JsonException e)
            {
                throw new XapiException(XapiException.ProtocolError, ["malformed JSON-RPC response: " + e.Message], method, e);
            }
        }

        public List<T> Result()
        {
            if (_error is not null)
            {
                throw _error;
            }

            if (!_sawResult)
            {
                throw new XapiException(XapiException.ProtocolError, ["JSON-RPC response has neither result nor error"], method);
            }

            return _records ?? throw new XapiException(XapiException.ProtocolError, [method + " did not return a map"], method);
        }

        /// <summary>One complete piece (a token, a member, a record); false when the bytes end before it does.</summary>
        private bool Step(ref Utf8JsonReader reader, bool final)
        {
            switch (_where)
            {
                case Where.Start:
                    if (!reader.Read())
                    {
                        return final ? throw NotAnObject() : false;
                    }

                    _where = reader.TokenType == JsonTokenType.StartObject ? Where.Envelope : throw NotAnObject();
                    return true;
                case Where.Envelope:
                    if (!reader.Read())
                    {
                        return false;
                    }

                    if (reader.TokenType != JsonTokenType.PropertyName)
                    {
                        _where = Where.Done;
                        return true;
                    }

                    var name = reader.GetString();
                    if (!reader.Read())
                    {
                        return false;
                    }

                    if (name == "error" && reader.TokenType != JsonTokenType.Null)
                    {
                        if (!JsonDocument.TryParseValue(ref reader, out var e))
                        {
                            return false;
                        }

                        using (e)
                        {
                            _error = ErrorToException(JsonNode.Parse(e.RootElement.GetRawText())!, method);
                        }

                        return true;
                    }

                    if (name == "result")
                    {
                        if (reader.TokenType == JsonTokenType.StartObject)
                        {
                            _sawResult = true;
                            _records = [];
                            _where = Where.Records;
                            return true;
                        }

                        if (!reader.TrySkip())
                        {
                            return false;
                        }

                        _sawResult = true;
                        return true;
                    }

                    return reader.TrySkip();
                case Where.Records:
                    if (!reader.Read())
                    {
                        return false;
                    }

                    if (reader.TokenType != JsonTokenType.PropertyName)
                    {
                        _where = Where.Envelope;
                        return true;
                    }

                    var r = reader.GetString() ?? "";
                    if (!reader.Read())
                    {
                        return false;
                    }

                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        return reader.TrySkip();
                    }

                    if (!JsonDocument.TryParseValue(ref reader, out var record))
                    {
                        return false;
                    }

                    using (record)
                    {
                        _records!.Add(map(r, record.RootElement));
                    }

                    return true;
                default:
                    return false;
            }
        }

        private XapiException NotAnObject() => new(XapiException.ProtocolError, ["JSON-RPC response is not an object"], method);
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
