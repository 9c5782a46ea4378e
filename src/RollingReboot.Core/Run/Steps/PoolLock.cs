using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RollingReboot.Core.Run.Steps;

/// <summary>The value a run writes under <see cref="Key"/> in pool.other_config: who holds the pool, until when.</summary>
public sealed record PoolLock(string? RunId, string? Operator, string? Machine, string? Started, DateTimeOffset? Expires, string Raw)
{
    public const string Key = "rollreboot-lock";

    /// <summary>Beside the lock (so the lock itself is only ever added and removed, atomically): the holder's last
    /// sign of life, renewed every <see cref="RunOptions.HeartbeatInterval"/> by the process that runs it.</summary>
    public const string HeartbeatKey = "rollreboot-lock-heartbeat";

    public static string HeartbeatValue(string runId, string instance, DateTimeOffset at, string machine, int? pid) => new JsonObject
    {
        ["runId"] = runId,
        ["instance"] = instance,
        ["at"] = at.ToString("O", CultureInfo.InvariantCulture),
        ["machine"] = machine,
        ["pid"] = pid,
    }.ToJsonString();

    /// <summary>Who holds the pool and whether that holder is alive: a heartbeat of the lock's run younger than
    /// <paramref name="timeout"/> on the reader's clock. A lock without any heartbeat (written by an older version, or
    /// in the instant between the lock and its first heartbeat) counts as alive until it expires.</summary>
    public static LockHolder? Holder(IReadOnlyDictionary<string, string> otherConfig, TimeProvider clock, TimeSpan timeout, Func<string, int, bool?>? processAlive = null)
    {
        ArgumentNullException.ThrowIfNull(otherConfig);
        ArgumentNullException.ThrowIfNull(clock);
        if (otherConfig.GetValueOrDefault(Key) is not { } value)
        {
            return null;
        }

        var held = Parse(value);
        string? instance = null;
        DateTimeOffset? beat = null;
        bool? processLives = null;
        if (otherConfig.GetValueOrDefault(HeartbeatKey) is { } hb)
        {
            try
            {
                var o = JsonNode.Parse(hb) as JsonObject;
                if (o?["runId"]?.ToString() == held.RunId)
                {
                    instance = o?["instance"]?.ToString();
                    beat = Time.IsoMoment.TryParse(o?["at"]?.ToString(), out var at) ? at : null;
                    if (processAlive is not null && o?["machine"]?.ToString() is { } machine && o?["pid"] is JsonValue p && p.TryGetValue<int>(out var pid))
                    {
                        processLives = processAlive(machine, pid);
                    }
                }
            }
            catch (JsonException)
            {
                // A damaged heartbeat is no sign of life.
            }
        }

        // A holder known dead on this machine is dead whatever its heartbeat's age.
        var alive = processLives ?? (beat is { } b ? clock.GetUtcNow() - b < timeout : !held.IsExpired(clock));
        return new LockHolder(held, instance, beat, alive);
    }

    public static string Create(string runId, string operatorName, string machine, DateTimeOffset now, TimeSpan ttl) => new JsonObject
    {
        ["runId"] = runId,
        ["operator"] = operatorName,
        ["machine"] = machine,
        ["started"] = now.ToString("O", CultureInfo.InvariantCulture),
        ["expires"] = (now + ttl).ToString("O", CultureInfo.InvariantCulture),
    }.ToJsonString();

    public static PoolLock Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        try
        {
            var o = JsonNode.Parse(value) as JsonObject;
            return new PoolLock(
                o?["runId"]?.ToString(), o?["operator"]?.ToString(), o?["machine"]?.ToString(), o?["started"]?.ToString(),
                Time.IsoMoment.TryParse(o?["expires"]?.ToString(), out var e) ? e : null, value);
        }
        catch (JsonException)
        {
            return new PoolLock(null, null, null, null, null, value);
        }
    }

    /// <summary>Was this lock written by that run? (A value that does not parse is nobody's we know.)</summary>
    public bool IsHeldBy(string runId) => RunId is not null && RunId == runId;

    /// <summary>Past its expiry on the run's clock (the lab's, under the lab: it was written on that clock).</summary>
    public bool IsExpired(TimeProvider clock) => Expires is { } e && e < clock.GetUtcNow();

    public string Owner => RunId is null ? "an unknown owner (" + Raw + ")" : $"run {RunId} by {Operator} on {Machine} since {Started}";
}

/// <summary>The lock on a pool, its holder's last heartbeat, and whether the holder is alive.</summary>
public sealed record LockHolder(PoolLock Lock, string? Instance, DateTimeOffset? Heartbeat, bool Alive)
{
    public string Describe() => Lock.Owner + (Heartbeat is { } b
        ? string.Create(CultureInfo.InvariantCulture, $", last heartbeat {b:u}")
        : "");
}
