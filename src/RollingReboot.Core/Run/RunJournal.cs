using System.Text.Json;
using System.Text.Json.Nodes;

namespace RollingReboot.Core.Run;

/// <summary>Where journal lines go (a local append-only file in the CLI).</summary>
public interface IJournalStore
{
    void Append(string line);

    IReadOnlyList<string> ReadAll();
}

/// <summary>
/// The run's append-only record: written before and after every state-changing call, so that restore and
/// resume are a read of the journal, not guesswork. Each line is one JSON object with <c>kind</c>.
/// </summary>
public sealed class RunJournal(IJournalStore store, TimeProvider clock)
{
    private readonly Lock _lock = new();

    public void Write(string kind, IReadOnlyDictionary<string, object?>? fields = null)
    {
        var o = new JsonObject { ["t"] = clock.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture), ["kind"] = kind };
        foreach (var (k, v) in fields ?? new Dictionary<string, object?>())
        {
            o[k] = v is null ? null : JsonSerializer.SerializeToNode(v, v.GetType());
        }

        lock (_lock)
        {
            store.Append(o.ToJsonString());
        }
    }

    /// <summary>Reads the journal back; a line that does not parse is a <see cref="JournalException"/>.</summary>
    public static IReadOnlyList<JsonObject> Read(IJournalStore store)
    {
        var list = new List<JsonObject>();
        var n = 0;
        var all = store.ReadAll();
        foreach (var line in all)
        {
            n++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                list.Add(JsonNode.Parse(line) as JsonObject ?? throw new JournalException($"journal line {n} is not a JSON object"));
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
        }

        if (list.Count > 0 && list[0]["kind"]?.ToString() != "run.start")
        {
            throw new JournalException("the journal does not begin with run.start; it is not a rollreboot journal");
        }

        return list;
    }
}

public sealed class JournalException(string message) : Exception(message)
{
    public JournalException() : this("bad journal") { }

    public JournalException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}
