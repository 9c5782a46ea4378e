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
    /// <param name="keysWorkedBefore">An earlier call with the same keys passed CloudStack's check (words a 401 accordingly).</param>
    public static JsonElement Parse(string command, HttpStatusCode status, string? reason, string body, string endpoint, bool keysWorkedBefore = false)
    {
        var code = (int)status;
        var root = TryParseJson(body);
        var isSuccess = code is >= 200 and < 300;
        if (!isSuccess)
        {
            if (root is { } json && TryFindError(json, out var errorCode, out var csErrorCode, out var errorText))
            {
                throw Error(command, errorCode == 0 ? code : errorCode, csErrorCode, errorText, keysWorkedBefore);
            }

            throw Error(command, code, 0, keysWorkedBefore: keysWorkedBefore, errorText:
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
            throw Error(command, innerCode, innerCs, innerText, keysWorkedBefore);
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

    /// <summary>ApiServer.commandAvailable's words for a command the caller's role (or key pair) may not run.</summary>
    private const string NotAvailableForUser = "is not available for user";

    private static CloudStackException Error(string command, int errorCode, int csErrorCode, string errorText, bool keysWorkedBefore)
    {
        if (errorCode == (int)HttpStatusCode.Unauthorized)
        {
            errorText = ExplainUnauthorized(command, errorText, keysWorkedBefore);
        }

        return new CloudStackException(errorCode, csErrorCode, errorText);
    }

    /// <summary>
    /// A 401, in the operator's words. ApiServer.verifyRequest answers 401 for a wrong or disabled key pair and an expired
    /// request, but also for a command the server does not know (it checks that before the signature), and
    /// commandAvailable answers 401 "...either does not exist, is not available for user" for one the role does not
    /// allow: so a 401 blames the keys only when nothing says otherwise.
    /// </summary>
    internal static string ExplainUnauthorized(string command, string errorText, bool keysWorkedBefore)
    {
        if (errorText.Contains(NotAvailableForUser, StringComparison.OrdinalIgnoreCase))
        {
            return $"CloudStack refused {command} for these API keys ({errorText}): the keys are accepted, but their user's role " +
                $"(or the key pair's own permissions) does not allow {command}, or this management server has no such command. " +
                $"rollreboot needs a root admin's keys that may call listClusters, listHosts, updateCluster, listVirtualMachines, " +
                "listServiceOfferings, listAsyncJobs and listDedicatedHosts.";
        }

        return keysWorkedBefore
            ? $"CloudStack refused {command} ({errorText}) with the API keys it accepted for earlier calls: most likely their user's role " +
              $"does not allow {command} or this management server does not know it (CloudStack answers both like a bad signature); " +
              $"give the keys' user a role that may call {command} (a root admin's), or check that the API key pair was not disabled or removed meanwhile."
            : $"CloudStack refused {command} as unauthenticated ({errorText}): the API key or secret key is wrong, the key pair or its user " +
              "is disabled (or API key access is off for them), the request expired because this machine's clock is off, " +
              $"or the keys' role does not allow {command}.";
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
