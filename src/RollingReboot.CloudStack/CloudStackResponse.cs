using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using RollingReboot.Core.Ports;

namespace RollingReboot.CloudStack;

/// <summary>Turns CloudStack's HTTP answers into JSON or a <see cref="CloudStackException"/>; nothing else escapes.</summary>
internal static class CloudStackResponse
{
    // utils/src/main/java/com/cloud/utils/DateUtil.java: "yyyy-MM-dd'T'HH:mm:ssZ"; fractions accepted too.
    private static readonly string[] s_dateFormats = ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"];

    private const int SnippetLength = 160;

    /// <summary>The inner object of <c>{"&lt;command&gt;response": {...}}</c>, detached from the document.</summary>
    public static JsonElement Parse(string command, HttpStatusCode status, string? reason, string body, string endpoint)
    {
        var code = (int)status;
        var root = TryParseJson(body);
        var isSuccess = code is >= 200 and < 300;
        if (!isSuccess)
        {
            if (root is { } json && TryFindError(json, out var errorCode, out var csErrorCode, out var errorText))
            {
                throw Error(command, errorCode == 0 ? code : errorCode, csErrorCode, errorText);
            }

            throw Error(command, code, 0,
                $"HTTP {code} {reason} from {endpoint} for {command}, and the body is not a CloudStack answer: {Snippet(body)}");
        }

        if (root is not { ValueKind: JsonValueKind.Object } document)
        {
            throw Malformed(command, endpoint, $"the body is not a JSON object: {Snippet(body)}");
        }

        var expectedName = command.ToLowerInvariant() + "response";
        JsonElement inner;
        if (document.TryGetProperty(expectedName, out var named))
        {
            inner = named;
        }
        else
        {
            // Some commands answer under another name (errorresponse, ...): accept a single wrapper object.
            var properties = document.EnumerateObject().ToList();
            if (properties.Count != 1)
            {
                throw Malformed(command, endpoint, $"no '{expectedName}' in {Snippet(body)}");
            }

            inner = properties[0].Value;
        }

        if (inner.ValueKind != JsonValueKind.Object)
        {
            throw Malformed(command, endpoint, $"'{expectedName}' is not an object: {Snippet(body)}");
        }

        if (TryReadError(inner, out var innerCode, out var innerCs, out var innerText))
        {
            throw Error(command, innerCode, innerCs, innerText);
        }

        return inner;
    }

    public static CloudStackException Malformed(string command, string endpoint, string detail) =>
        new(0, 0, $"CloudStack at {endpoint} gave an answer to {command} that rollreboot cannot read: {detail}");

    /// <summary>A string field; numbers and booleans as their JSON text; null when absent or null.</summary>
    public static string? GetString(JsonElement item, string name)
    {
        if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty(name, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
            _ => null,
        };
    }

    public static string Require(JsonElement item, string name, string command, string what, string endpoint) =>
        GetString(item, name) is { Length: > 0 } value
            ? value
            : throw Malformed(command, endpoint, $"a {what} without '{name}': {Snippet(item.GetRawText())}");

    public static int? GetInt(JsonElement item, string name) =>
        int.TryParse(GetString(item, name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;

    /// <summary>
    /// A date as CloudStack writes them (<c>yyyy-MM-dd'T'HH:mm:ssZ</c>, e.g. <c>2026-11-22T12:00:00+0000</c>); ISO 8601 with
    /// a colon in the offset is read too. Null when absent or unreadable: dates are only shown, never decided on.
    /// </summary>
    public static DateTimeOffset? GetDate(JsonElement item, string name)
    {
        var text = GetString(item, name);
        if (text is null)
        {
            return null;
        }

        if (text.Length > 5 && text[^5] is '+' or '-' && text[^4..].All(char.IsAsciiDigit))
        {
            text = text[..^2] + ":" + text[^2..];
        }

        return DateTimeOffset.TryParseExact(text, s_dateFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value) ? value : null;
    }

    /// <summary>The objects of a list answer's array (absent when the list is empty).</summary>
    public static IReadOnlyList<JsonElement> Items(JsonElement inner, string itemName, string command, string endpoint)
    {
        if (!inner.TryGetProperty(itemName, out var array) || array.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            throw Malformed(command, endpoint, $"'{itemName}' is not a list");
        }

        var items = new List<JsonElement>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw Malformed(command, endpoint, $"an entry of '{itemName}' is not an object: {Snippet(item.GetRawText())}");
            }

            items.Add(item);
        }

        return items;
    }

    public static string Snippet(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "(empty)";
        }

        var builder = new StringBuilder();
        var lastWasSpace = false;
        foreach (var c in text)
        {
            var space = char.IsWhiteSpace(c) || char.IsControl(c);
            if (space && lastWasSpace)
            {
                continue;
            }

            builder.Append(space ? ' ' : c);
            lastWasSpace = space;
            if (builder.Length >= SnippetLength)
            {
                builder.Append('…');
                break;
            }
        }

        return builder.ToString().Trim();
    }

    private static CloudStackException Error(string command, int errorCode, int csErrorCode, string errorText)
    {
        if (errorCode == (int)HttpStatusCode.Unauthorized)
        {
            errorText = $"CloudStack refused {command} as unauthenticated ({errorText}): the API key or secret key is wrong, " +
                "the key pair or its user is disabled, or (signature version 3) the request expired because the clocks disagree.";
        }

        return new CloudStackException(errorCode, csErrorCode, errorText);
    }

    private static JsonElement? TryParseJson(string body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>An error object anywhere at the top: <c>{"anyresponse": {"errorcode": ..}}</c>.</summary>
    private static bool TryFindError(JsonElement root, out int errorCode, out int csErrorCode, out string errorText)
    {
        errorCode = 0;
        csErrorCode = 0;
        errorText = "";
        if (root.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        if (TryReadError(root, out errorCode, out csErrorCode, out errorText))
        {
            return true;
        }

        foreach (var property in root.EnumerateObject())
        {
            if (property.Value.ValueKind == JsonValueKind.Object && TryReadError(property.Value, out errorCode, out csErrorCode, out errorText))
            {
                return true;
            }
        }

        return false;
    }

    private static bool TryReadError(JsonElement item, out int errorCode, out int csErrorCode, out string errorText)
    {
        errorCode = GetInt(item, "errorcode") ?? 0;
        csErrorCode = GetInt(item, "cserrorcode") ?? 0;
        var text = GetString(item, "errortext");
        errorText = text ?? "(no error text)";
        return item.TryGetProperty("errorcode", out _) || text is not null;
    }
}
