using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RollingReboot.Core.Run.Journal;

/// <summary>Where journal lines go (a local append-only file in the CLI).</summary>
public interface IJournalStore
{
    void Append(string line);

    IReadOnlyList<string> ReadAll();
}

/// <summary>
/// The run's append-only record, one JSON object a line: <c>t</c> (the run's clock), <c>kind</c>, then the event's
/// fields in camelCase. The only writer and reader of journal lines.
/// </summary>
public static class RunJournal
{
    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = true,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private static readonly Dictionary<string, Type> s_types = typeof(RunEvent).Assembly.GetTypes()
        .Where(t => t.IsSubclassOf(typeof(RunEvent)) && !t.IsAbstract && t != typeof(UnknownEvent) && t != typeof(RunContinued))
        .ToDictionary(KindOf, t => t, StringComparer.Ordinal);

    /// <summary>The journal line for an event.</summary>
    public static string Serialize(RunEvent e, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(e);
        var o = new JsonObject { ["t"] = at.ToString("O", CultureInfo.InvariantCulture), ["kind"] = e.Kind };
        if (e is not UnknownEvent && JsonSerializer.SerializeToNode(e, e.GetType(), s_json) is JsonObject fields)
        {
            foreach (var (k, v) in fields.ToList())
            {
                fields.Remove(k);
                o[k] = v;
            }
        }

        return o.ToJsonString();
    }

    /// <summary>Reads a journal back. A line that does not parse is a <see cref="JournalException"/>, except a last line a
    /// crash cut short.</summary>
    public static IReadOnlyList<RunEvent> Read(IJournalStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var list = new List<RunEvent>();
        var all = store.ReadAll();
        for (var n = 1; n <= all.Count; n++)
        {
            var line = all[n - 1];
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            JsonObject o;
            try
            {
                o = JsonNode.Parse(line) as JsonObject ?? throw new JournalException($"journal line {n} is not a JSON object");
            }
            catch (JsonException e)
            {
                // A crash can cut the last line short; anything earlier is corruption.
                if (n == all.Count)
                {
                    break;
                }

                throw new JournalException($"journal line {n} is not valid JSON ({e.Message}); the journal is damaged");
            }

            list.Add(Parse(o, n));
        }

        if (list.Count > 0 && list[0] is not RunStarted)
        {
            throw new JournalException("the journal does not begin with run.start; it is not a rollreboot journal");
        }

        return list;
    }

    /// <summary>One line as a reader following the journal sees it (no check that the journal begins with run.start);
    /// null for a line that is not an event.</summary>
    public static RunEvent? TryParseLine(string line)
    {
        try
        {
            return JsonNode.Parse(line) is JsonObject o ? Parse(o, 1) : null;
        }
        catch (Exception e) when (e is JsonException or JournalException)
        {
            return null;
        }
    }

    private static RunEvent Parse(JsonObject o, int n)
    {
        var kind = o["kind"] is JsonValue k && k.TryGetValue<string>(out var s) ? s : throw new JournalException($"journal line {n} has no kind");
        var at = o["t"] is JsonValue t && t.TryGetValue<string>(out var ts) && Time.IsoMoment.TryParse(ts, out var when) ? when : default;
        try
        {
            RunEvent e = kind switch
            {
                "run.resume" or "run.restore" => new RunContinued(kind[4..]),
                _ when s_types.TryGetValue(kind, out var type) => (RunEvent?)o.Deserialize(type, s_json)
                    ?? throw new JournalException($"journal line {n} ({kind}) is empty"),
                _ => new UnknownEvent(kind),
            };
            return e with { At = at };
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or FormatException)
        {
            throw new JournalException($"journal line {n} ({kind}) has a field of the wrong type ({e.Message}); the journal is damaged");
        }
    }

    private static string KindOf(Type t)
    {
        // Each event type names its kind through an instance; build one with default arguments to ask.
        var ctor = t.GetConstructors().OrderBy(c => c.GetParameters().Length).First();
        var args = ctor.GetParameters().Select(p => p.HasDefaultValue ? p.DefaultValue : p.ParameterType.IsValueType ? Activator.CreateInstance(p.ParameterType) : null).ToArray();
        return ((RunEvent)ctor.Invoke(args)).Kind;
    }
}

public sealed class JournalException(string message) : Exception(message)
{
    public JournalException() : this("bad journal") { }

    public JournalException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}
