using System.Globalization;
using System.Text;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Output;

/// <summary>The run's report: what happened per host, what was restored, what an operator must do.</summary>
public static class ReportWriter
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    public static string ToText(RunReport r)
    {
        var sb = new StringBuilder();
        sb.Append(s_inv, $"Run {r.RunId} on pool {r.PoolName}: {Outcome(r.Outcome)}\n");
        sb.Append(s_inv, $"  {r.Message}\n");
        if (r.Hosts.Count > 0)
        {
            sb.Append(s_inv, $"\n  {"HOST",-16} {"MIGRATIONS",10} {"GiB MOVED",10} {"EVACUATE",9} {"REBOOT",9} {"RETRIES",8}  RESULT\n");
            foreach (var h in r.Hosts)
            {
                sb.Append(s_inv, $"  {h.Name + (h.IsMaster ? "*" : ""),-16} {h.Migrations,10} {h.BytesMoved / (double)(1L << 30),10:0.0} {Span(h.EvacuationSeconds),9} {Span(h.RebootSeconds),9} {h.Retries,8}  {h.Result}\n");
            }

            sb.Append("  (* master)\n");
        }

        sb.Append(s_inv, $"\n  Total {Span(r.TotalSeconds)} (estimated {Span(r.EstimatedSeconds)})\n");
        if (r.VmReturns.Count > 0)
        {
            sb.Append(s_inv, $"  VMs on their original hosts: {r.VmReturns.Count(v => v.IsHome)} of {r.VmReturns.Count}\n");
            foreach (var v in r.VmReturns.Where(v => !v.IsHome))
            {
                sb.Append(s_inv, $"  not home: {v.Vm} (home {v.HomeHost}, now {v.EndedOn}): {v.Why}\n");
            }
        }
        foreach (var x in r.Restored)
        {
            sb.Append("  restored: ").Append(x).Append('\n');
        }

        foreach (var x in r.Notes)
        {
            sb.Append("  note: ").Append(x).Append('\n');
        }

        foreach (var x in r.OperatorActions)
        {
            sb.Append("  OPERATOR ACTION NEEDED: ").Append(x).Append('\n');
        }

        return sb.ToString();
    }

    public static string ToMarkdown(RunReport r)
    {
        var sb = new StringBuilder();
        sb.Append(s_inv, $"# rollreboot run {r.RunId}\n\nPool **{r.PoolName}**: {Outcome(r.Outcome)}. {r.Message}\n\n");
        sb.Append("| Host | Migrations | GiB moved | Evacuation | Reboot | Retries | Result |\n|---|---:|---:|---:|---:|---:|---|\n");
        foreach (var h in r.Hosts)
        {
            sb.Append(s_inv, $"| {h.Name}{(h.IsMaster ? " (master)" : "")} | {h.Migrations} | {h.BytesMoved / (double)(1L << 30):0.0} | {Span(h.EvacuationSeconds)} | {Span(h.RebootSeconds)} | {h.Retries} | {h.Result} |\n");
        }

        sb.Append(s_inv, $"\nTotal {Span(r.TotalSeconds)} against an estimate of {Span(r.EstimatedSeconds)}.\n\n");
        if (r.VmReturns.Count > 0)
        {
            sb.Append(s_inv, $"VMs on their original hosts: {r.VmReturns.Count(v => v.IsHome)} of {r.VmReturns.Count}.\n\n");
            if (r.VmReturns.Any(v => !v.IsHome))
            {
                sb.Append("| VM not home | Original host | Now on | Why |\n|---|---|---|---|\n");
                foreach (var v in r.VmReturns.Where(v => !v.IsHome))
                {
                    sb.Append(s_inv, $"| {v.Vm} | {v.HomeHost} | {v.EndedOn} | {v.Why} |\n");
                }

                sb.Append('\n');
            }
        }

        if (r.Hosts.Count > 0)
        {
            sb.Append("```mermaid\ngantt\n  dateFormat X\n  axisFormat %H:%M:%S\n");
            double t = 0;
            foreach (var h in r.Hosts)
            {
                sb.Append(s_inv, $"  section {h.Name}\n  evacuate : {(long)t}, {(long)(t + h.EvacuationSeconds)}\n  reboot : {(long)(t + h.EvacuationSeconds)}, {(long)(t + h.EvacuationSeconds + h.RebootSeconds)}\n");
                t += h.EvacuationSeconds + h.RebootSeconds;
            }

            sb.Append("```\n\n");
        }

        foreach (var x in r.Restored)
        {
            sb.Append("- restored: ").Append(x).Append('\n');
        }

        foreach (var x in r.Notes)
        {
            sb.Append("- note: ").Append(x).Append('\n');
        }

        foreach (var x in r.OperatorActions)
        {
            sb.Append("- **operator action needed**: ").Append(x).Append('\n');
        }

        return sb.ToString();
    }

    public static string ToJson(RunReport r)
    {
        var o = new System.Text.Json.Nodes.JsonObject
        {
            ["runId"] = r.RunId,
            ["pool"] = r.PoolName,
            ["outcome"] = r.Outcome.ToString(),
            ["message"] = r.Message,
            ["totalSeconds"] = Math.Round(r.TotalSeconds, 1),
            ["estimatedSeconds"] = Math.Round(r.EstimatedSeconds, 1),
            ["hosts"] = new System.Text.Json.Nodes.JsonArray(r.Hosts.Select(h => (System.Text.Json.Nodes.JsonNode?)new System.Text.Json.Nodes.JsonObject
            {
                ["name"] = h.Name,
                ["isMaster"] = h.IsMaster,
                ["migrations"] = h.Migrations,
                ["bytesMoved"] = h.BytesMoved,
                ["evacuationSeconds"] = Math.Round(h.EvacuationSeconds, 1),
                ["rebootSeconds"] = Math.Round(h.RebootSeconds, 1),
                ["retries"] = h.Retries,
                ["result"] = h.Result,
            }).ToArray()),
            ["restored"] = new System.Text.Json.Nodes.JsonArray(r.Restored.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray()),
            ["notes"] = new System.Text.Json.Nodes.JsonArray(r.Notes.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray()),
            ["operatorActions"] = new System.Text.Json.Nodes.JsonArray(r.OperatorActions.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray()),
            ["vmReturns"] = new System.Text.Json.Nodes.JsonArray(r.VmReturns.Select(v => (System.Text.Json.Nodes.JsonNode?)new System.Text.Json.Nodes.JsonObject
            {
                ["vm"] = v.Vm,
                ["homeHost"] = v.HomeHost,
                ["endedOn"] = v.EndedOn,
                ["home"] = v.IsHome,
                ["why"] = v.Why,
            }).ToArray()),
        };
        return o.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static string Outcome(RunOutcome o) => o switch
    {
        RunOutcome.Done => "done",
        RunOutcome.Blocked => "refused, nothing changed",
        RunOutcome.StoppedRestored => "stopped, pool restored to its original safe state",
        RunOutcome.Interrupted => "interrupted, pool restored",
        _ => "stopped, an operator must act",
    };

    private static string Span(double seconds) => TimeSpan.FromSeconds(Math.Max(0, Math.Round(seconds))).ToString(seconds >= 3600 ? @"h\:mm\:ss" : @"m\:ss", s_inv);
}
