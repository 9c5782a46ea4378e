using System.Text;
using System.Text.Json;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli.Adapters;

/// <summary>
/// <c>--notify-template FILE</c>: the body each notification is posted as, with <c>{{name}}</c> placeholders for the
/// notification's fields (<see cref="Names"/>). A template whose first non-blank character is <c>{</c> (not a placeholder's <c>{{</c>) or <c>[</c> is
/// JSON: values are put in JSON-escaped (without quotes: write <c>"{{text}}"</c>), the body must still be JSON with any
/// value, and it is sent as application/json; any other template is sent as text/plain, values as they are. A missing
/// value (no host in a run-wide event) is empty. Checked whole before the run: an unknown placeholder, a brace left
/// open or JSON broken by the template is one line naming the file (exit 2).
/// </summary>
internal sealed class NotifyTemplate
{
    public static readonly IReadOnlyList<string> Names = ["text", "event", "cluster", "pool", "runId", "host", "outcome", "time"];

    private readonly List<(string Literal, string? Name)> _parts;

    private NotifyTemplate(string path, List<(string, string?)> parts, bool isJson)
    {
        Path = path;
        _parts = parts;
        IsJson = isJson;
    }

    public string Path { get; }

    public bool IsJson { get; }

    public string MediaType => IsJson ? "application/json" : "text/plain";

    /// <exception cref="UserFacingException">The file cannot be read or is not a valid template.</exception>
    public static NotifyTemplate Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserFacingException($"--notify-template {path}: cannot be read ({e.Message})");
        }

        return Parse(text, path);
    }

    /// <exception cref="UserFacingException">Not a valid template.</exception>
    public static NotifyTemplate Parse(string text, string path)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new UserFacingException($"--notify-template {path}: the file is empty; write the body to post, e.g. {{\"text\": \"{{{{text}}}}\"}}");
        }

        var parts = new List<(string, string?)>();
        var at = 0;
        while (at < text.Length)
        {
            var open = text.IndexOf("{{", at, StringComparison.Ordinal);
            if (open < 0)
            {
                parts.Add((text[at..], null));
                break;
            }

            var close = text.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0)
            {
                throw new UserFacingException($"--notify-template {path}: '{{{{' at line {Line(text, open)} is never closed with '}}}}'");
            }

            var name = text[(open + 2)..close].Trim();
            if (!Names.Contains(name, StringComparer.Ordinal))
            {
                var near = Names.FirstOrDefault(n => n.Equals(name, StringComparison.OrdinalIgnoreCase));
                throw new UserFacingException($"--notify-template {path}: unknown placeholder {{{{{name}}}}} at line {Line(text, open)}"
                    + (near is not null ? $"; did you mean {{{{{near}}}}}?" : "; known: " + string.Join(", ", Names.Select(n => "{{" + n + "}}"))));
            }

            parts.Add((text[at..open], name));
            at = close + 2;
        }

        // A JSON object never starts with "{{": a template opening with a placeholder is text.
        var start = text.TrimStart();
        var isJson = start.StartsWith('[') || (start.StartsWith('{') && !start.StartsWith("{{", StringComparison.Ordinal));
        var template = new NotifyTemplate(path, parts, isJson);
        if (isJson)
        {
            // Values with quotes, backslashes and line breaks: the body must stay JSON whatever the run says.
            var sample = new RunNotification("finish", "a \"quoted\"\\ line\nand another", "C", "P", "20260101T000000-abcdef", "h1", "Done");
            try
            {
                using var _ = JsonDocument.Parse(template.Render(sample, DateTimeOffset.UnixEpoch));
            }
            catch (JsonException e)
            {
                throw new UserFacingException($"--notify-template {path}: starts like JSON but is not JSON once filled in (line {e.LineNumber + 1}): {e.Message.Split(" LineNumber:", 2)[0]}; put placeholders inside strings (\"{{{{text}}}}\")");
            }
        }

        return template;
    }

    /// <summary>The body for one notification sent at <paramref name="at"/>.</summary>
    public string Render(RunNotification n, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(n);
        var sb = new StringBuilder();
        foreach (var (literal, name) in _parts)
        {
            sb.Append(literal);
            if (name is null)
            {
                continue;
            }

            var value = name switch
            {
                "text" => n.Text,
                "event" => n.Event,
                "cluster" => n.Cluster,
                "pool" => n.Pool,
                "runId" => n.RunId,
                "host" => n.Host,
                "outcome" => n.Outcome,
                _ => at.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            } ?? "";
            sb.Append(IsJson ? JsonEncodedText.Encode(value, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value : value);
        }

        return sb.ToString();
    }

    private static int Line(string text, int index) => text.AsSpan(0, index).Count('\n') + 1;
}
