using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RollingReboot.Core.Pool;
using RollingReboot.Xapi;

namespace RollingReboot.Cli.Commands;

/// <summary><c>rollreboot status</c>: the pool at a glance (master, HA, hosts, VMs).</summary>
internal static class StatusCommand
{
    private static readonly Option<string> s_format = new("--format") { Description = "text or json", DefaultValueFactory = _ => "text" };

    public static Command Create(CliEnvironment env)
    {
        var xapi = new XapiOptions();
        var command = new Command("status", "Show the pool: master, HA settings (timeout, heartbeat SRs), each host (enabled, live, boot time, free memory, VMs, pending reboot), VMs by state.");
        xapi.AddTo(command);
        command.Options.Add(s_format);
        command.SetAction(async (parse, ct) =>
        {
            var format = parse.GetValue(s_format) ?? "text";
            if (format is not ("text" or "json"))
            {
                throw new UserFacingException($"--format {format} is not known; use text or json");
            }

            var settings = xapi.Resolve(parse, env);
            var clock = env.CreateClock();
            await using var connection = new XapiPoolConnection(Connections.CreateXapiClient(settings, env, clock));
            PoolSnapshot pool;
            try
            {
                pool = await connection.ReadAsync(ct);
            }
            catch (XapiException e)
            {
                throw new UserFacingException(Connections.Describe(e, settings));
            }

            await env.Out.WriteAsync(format == "json" ? ToJson(pool) : ToText(pool, connection.Client.MasterUrl));
            return ExitCodes.Success;
        });
        return command;
    }

    internal static string ToJson(PoolSnapshot pool)
    {
        var o = new JsonObject
        {
            ["uuid"] = pool.Uuid,
            ["name"] = pool.Name,
            ["master"] = pool.Master.Name,
            ["ha"] = new JsonObject
            {
                ["enabled"] = pool.Ha.Enabled,
                ["timeoutSeconds"] = pool.Ha.TimeoutSeconds,
                ["heartbeatSrs"] = new JsonArray(pool.Ha.HeartbeatSrUuids.Select(u => (JsonNode?)(pool.Srs.FirstOrDefault(s => s.Uuid == u)?.Name ?? u)).ToArray()),
                ["configuration"] = new JsonObject(pool.Ha.Configuration.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["hostFailuresToTolerate"] = pool.Ha.HostFailuresToTolerate,
                ["allowOvercommit"] = pool.Ha.AllowOvercommit,
            },
            ["hosts"] = new JsonArray(pool.Hosts.OrderBy(h => h.Name, StringComparer.Ordinal).Select(h => (JsonNode?)new JsonObject
            {
                ["name"] = h.Name,
                ["uuid"] = h.Uuid,
                ["address"] = h.Address,
                ["isMaster"] = h.Uuid == pool.MasterUuid,
                ["enabled"] = h.Enabled,
                ["live"] = h.Live,
                ["bootTime"] = h.BootTime?.ToString("O", CultureInfo.InvariantCulture),
                ["memoryTotalBytes"] = h.MemoryTotal,
                ["memoryFreeBytes"] = h.MemoryFree,
                ["runningVms"] = pool.RunningOn(h.Uuid).Count(),
                ["needsReboot"] = h.NeedsReboot,
                ["pendingGuidances"] = new JsonArray(h.PendingGuidances.Select(g => (JsonNode?)g).ToArray()),
            }).ToArray()),
            ["vmsByState"] = new JsonObject(pool.Vms.GroupBy(v => v.PowerState).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => KeyValuePair.Create(g.Key, (JsonNode?)g.Count()))),
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    internal static string ToText(PoolSnapshot pool, Uri master)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"Pool {pool.Name} ({pool.Uuid})\n");
        sb.Append(inv, $"Master: {pool.Master.Name} at {master.Host}\n");
        var ha = pool.Ha;
        var srNames = string.Join(", ", ha.HeartbeatSrUuids.Select(u => pool.Srs.FirstOrDefault(s => s.Uuid == u)?.Name ?? u));
        sb.Append(ha.Enabled
            ? string.Create(inv, $"HA: enabled, timeout {ha.TimeoutSeconds?.ToString(inv) ?? "default (60)"} s, heartbeat SR {srNames}, failures to tolerate {ha.HostFailuresToTolerate}, overcommit {(ha.AllowOvercommit ? "allowed" : "not allowed")}\n")
            : "HA: disabled\n");
        sb.Append('\n');
        sb.Append(inv, $"{"HOST",-16} {"ROLE",-7} {"ENABLED",-8} {"LIVE",-5} {"BOOTED (UTC)",-20} {"FREE GiB",9} {"VMS",5}  REBOOT\n");
        foreach (var h in pool.Hosts.OrderBy(h => h.Uuid != pool.MasterUuid).ThenBy(h => h.Name, StringComparer.Ordinal))
        {
            sb.Append(inv, $"{h.Name,-16} {(h.Uuid == pool.MasterUuid ? "master" : "member"),-7} {(h.Enabled ? "yes" : "NO"),-8} {(h.Live ? "yes" : "NO"),-5} {h.BootTime?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", inv) ?? "?",-20} {h.MemoryFree / (double)(1L << 30),9:0.0} {pool.RunningOn(h.Uuid).Count(),5}  {(h.NeedsReboot ? "pending" : "-")}\n");
        }

        sb.Append('\n');
        sb.Append("VMs: ").Append(string.Join(", ", pool.Vms.GroupBy(v => v.PowerState).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}"))).Append('\n');
        return sb.ToString();
    }
}
