using System.Text.Json.Nodes;

namespace RollingReboot.Lab.Sim;

/// <summary>The lab's record of what happened, in simulated seconds, and of every broken promise.</summary>
public sealed class LabAudit : ILabAudit
{
    private readonly Lock _lock = new();
    private readonly List<JsonObject> _events = [];
    private readonly List<string> _violations = [];
    private Func<double> _now;

    public LabAudit(Func<double> now)
    {
        _now = now;
    }

    public double SimulatedSeconds => _now();

    /// <summary>Stamps events with the simulation's own clock, so event times and <c>simulatedSeconds</c> agree exactly.</summary>
    internal void UseClock(Func<double> now) => _now = now;

    public void Event(string type, IReadOnlyDictionary<string, object?> fields)
    {
        var o = new JsonObject { ["t"] = Math.Round(_now(), 3), ["type"] = type };
        foreach (var (k, v) in fields)
        {
            o[k] = v switch
            {
                null => null,
                JsonNode n => n.DeepClone(),
                string s => s,
                bool b => b,
                int i => i,
                long l => l,
                double d => Math.Round(d, 3),
                IReadOnlyDictionary<string, string> m => new JsonObject(m.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                IEnumerable<string> list => new JsonArray(list.Select(x => (JsonNode?)x).ToArray()),
                _ => v.ToString(),
            };
        }

        lock (_lock)
        {
            _events.Add(o);
        }
    }

    public void Violation(string text)
    {
        lock (_lock)
        {
            _violations.Add(text);
        }

        Event("violation", new Dictionary<string, object?> { ["text"] = text });
    }

    public (JsonArray Events, JsonArray Violations) Snapshot()
    {
        lock (_lock)
        {
            return (new JsonArray(_events.Select(e => (JsonNode?)e.DeepClone()).ToArray()), new JsonArray(_violations.Select(v => (JsonNode?)v).ToArray()));
        }
    }

    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_lock)
            {
                return _violations.ToList();
            }
        }
    }
}
