using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Run.Steps;

/// <summary>The marker 'rollreboot evacuate' leaves in pool.other_config: which host is out and which VMs it ran.</summary>
public static class Evacuation
{
    /// <summary>pool.other_config key prefix marking a host emptied by 'rollreboot evacuate'.</summary>
    public const string KeyPrefix = "rollreboot-evacuated-";

    public static string MarkerKey(string hostUuid) => KeyPrefix + hostUuid;

    public static string MarkerValue(string runId, HostState host, OriginalState original, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(original);
        return new JsonObject
        {
            ["runId"] = runId,
            ["host"] = host.Name,
            ["at"] = at.ToString("O", CultureInfo.InvariantCulture),
            ["vms"] = new JsonArray([.. original.VmHost.Where(kv => kv.Value == host.Uuid).Select(kv => kv.Key).Order(StringComparer.Ordinal).Select(k => (JsonNode?)k)]),
        }.ToJsonString();
    }

    /// <summary>The VMs a marker names; a damaged marker names none (and says so), never throws.</summary>
    public static IReadOnlyList<string> MarkedVms(string? marker, out bool damaged)
    {
        damaged = false;
        if (marker is null)
        {
            return [];
        }

        try
        {
            return (JsonNode.Parse(marker)?["vms"] as JsonArray)?.Select(n => n?.ToString()).OfType<string>().ToList() ?? [];
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            damaged = true;
            return [];
        }
    }
}
