using System.Text;
using System.Text.Json.Nodes;
using RollingReboot.Cli.Output;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Commands;

/// <summary>What a fleet invocation gathers from its clusters: each one's exit, plan or report; one output for all.</summary>
internal sealed class FleetContext(IReadOnlyList<string> names)
{
    /// <summary>From worst to best: the fleet exits with the worst of its clusters.</summary>
    private static readonly int[] s_severity = [ExitCodes.NeedsOperator, ExitCodes.StoppedRestored, ExitCodes.Interrupted, ExitCodes.PreflightBlocked, ExitCodes.BadInput, ExitCodes.Success];

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (int? Code, string? Note)> _results = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Plan> _plans = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RunReport> _reports = new(StringComparer.Ordinal);

    /// <summary>After a cluster stopped (exit 4, 5 or 130) no further cluster is started.</summary>
    public bool StopStarting { get; private set; }

    public void Record(string name, int? code, string? note)
    {
        lock (_lock)
        {
            _results[name] = (code, note);
            if (code is ExitCodes.StoppedRestored or ExitCodes.NeedsOperator or ExitCodes.Interrupted)
            {
                StopStarting = true;
            }
        }
    }

    public void AddPlan(string name, Plan plan)
    {
        lock (_lock)
        {
            _plans[name] = plan;
        }
    }

    public void AddReport(string name, RunReport report)
    {
        lock (_lock)
        {
            _reports[name] = report;
        }
    }

    /// <summary>
    /// The XAPI address for a cluster of the fleet: the configured one when it is a host of this cluster, else
    /// the address CloudStack lists for one of its hosts (Up first), on the configured scheme and port. The
    /// client follows HOST_IS_SLAVE to the master from there.
    /// </summary>
    public static async Task<XapiSettings> PoolAddressAsync(XapiSettings settings, ICloudStack api, CloudStackCluster cluster, CancellationToken cancellationToken)
    {
        var hosts = await api.ListHostsAsync(cluster.Id, cancellationToken);
        if (hosts.Any(h => string.Equals(h.IpAddress, settings.Url.Host.Trim('[', ']'), StringComparison.OrdinalIgnoreCase)))
        {
            return settings;
        }

        var pick = hosts.Where(h => h.State == "Up").Concat(hosts).FirstOrDefault(h => !string.IsNullOrEmpty(h.IpAddress))
            ?? throw new UserFacingException($"CloudStack lists no host address for cluster {cluster.Name}: cannot find its pool");
        var host = pick.IpAddress.Contains(':', StringComparison.Ordinal) ? "[" + pick.IpAddress + "]" : pick.IpAddress;
        return settings with { Url = new UriBuilder(settings.Url) { Host = host }.Uri };
    }

    public async Task<int> WriteAsync(CliEnvironment env, bool exec, string format, FileInfo? output, FileInfo? report, FileInfo? reportJson)
    {
        if (!exec)
        {
            var planned = names.Where(_plans.ContainsKey).ToList();
            var text = format switch
            {
                "json" => new JsonObject
                {
                    ["clusters"] = new JsonArray([.. planned.Select(n => JsonNode.Parse(PlanWriter.ToJson(_plans[n], n)))]),
                    ["notPlanned"] = new JsonArray([.. names.Where(n => !_plans.ContainsKey(n)).Select(n => (JsonNode?)n)]),
                }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }),
                "markdown" => string.Concat(planned.Select(n => PlanWriter.ToMarkdown(_plans[n], n) + "\n")),
                _ => string.Concat(planned.Select(n => $"== {n} ==\n" + PlanWriter.ToText(_plans[n], n) + "\n")),
            };
            if (output is not null)
            {
                await File.WriteAllTextAsync(output.FullName, text);
                await env.Error.WriteLineAsync($"plans written to {output.FullName}");
            }
            else
            {
                await env.Out.WriteAsync(text.EndsWith('\n') ? text : text + "\n");
            }
        }

        var summary = new StringBuilder("\nFleet:\n");
        foreach (var n in names)
        {
            var (code, note) = _results.GetValueOrDefault(n);
            var what = note ?? (_reports.TryGetValue(n, out var r) ? $"{r.Outcome}: {r.Message}" : code == ExitCodes.Success ? "plan can run" : code == ExitCodes.PreflightBlocked ? "blocked" : "failed");
            summary.Append(System.Globalization.CultureInfo.InvariantCulture, $"  {n,-20} exit {(code?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"),-4} {what}\n");
        }

        await (exec ? env.Out : env.Error).WriteAsync(summary.ToString());
        var reports = names.Where(_reports.ContainsKey).Select(n => _reports[n]).ToList();
        if (report is not null)
        {
            await File.WriteAllTextAsync(report.FullName, "# rollreboot fleet run\n\n" + string.Concat(reports.Select(r => ReportWriter.ToMarkdown(r).Replace("\n# ", "\n## ", StringComparison.Ordinal) + "\n")));
        }

        if (reportJson is not null)
        {
            await File.WriteAllTextAsync(reportJson.FullName, new JsonObject
            {
                ["clusters"] = new JsonArray([.. names.Where(_reports.ContainsKey).Select(n => JsonNode.Parse(ReportWriter.ToJson(_reports[n])))]),
                ["notRun"] = new JsonArray([.. names.Where(n => !_reports.ContainsKey(n)).Select(n => (JsonNode?)n)]),
            }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        }

        var codes = names.Select(n => _results.GetValueOrDefault(n).Code ?? ExitCodes.Success).ToList();
        return s_severity.FirstOrDefault(codes.Contains, ExitCodes.Success);
    }
}
