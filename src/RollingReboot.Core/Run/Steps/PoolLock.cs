using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RollingReboot.Core.Run.Steps;

/// <summary>The value a run writes under <see cref="Key"/> in pool.other_config: who holds the pool, until when.</summary>
public sealed record PoolLock(string? RunId, string? Operator, string? Machine, string? Started, DateTimeOffset? Expires, string Raw)
{
    public const string Key = "rollreboot-lock";

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
