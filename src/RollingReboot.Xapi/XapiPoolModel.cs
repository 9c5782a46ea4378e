using System.Text.Json.Nodes;

namespace RollingReboot.Xapi;

/// <summary>
/// The records a pool read is made of (pool, hosts and their metrics, VMs and their guest metrics, SRs, VDIs, VBDs,
/// PBDs), as one full read left them and kept current since with <c>event.from</c> on those classes: a later read is
/// one call that brings only what changed instead of nine <c>get_all_records</c>.
/// </summary>
/// <remarks>
/// What xapi guarantees (ocaml/xapi/xapi_event.ml <c>from_inner</c>, <c>collect_events</c>): every object of a
/// subscribed class created, modified or deleted after the token's generation is reported (<c>add</c> or <c>mod</c> with
/// the record as <c>get_record</c> gives it, <c>events_of</c> -> <c>Eventgen.find_get_record</c>; <c>del</c> without
/// one), and the token returned is the last generation among them. So a token taken before a full read is safe: what
/// changed between the two comes again, as current records. With <c>timeout</c> 0 the call returns at once, empty when
/// nothing changed. The model is used only with the session it was made on (a new session: the master restarted or
/// moved, a full read again).
/// </remarks>
internal sealed class XapiPoolModel
{
    /// <summary>The classes of a pool read, as <c>event.from</c> subscriptions.</summary>
    internal static readonly string[] Classes = ["pool", "host", "host_metrics", "VM", "VM_guest_metrics", "SR", "VDI", "VBD", "PBD"];

    public XapiPoolModel(string token, long logins)
    {
        Token = token;
        Logins = logins;
    }

    public string Token { get; set; }

    /// <summary>The client's login count when the model was made: another means another session.</summary>
    public long Logins { get; }

    public Dictionary<string, XapiPoolRecord> Pools { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiHostRecord> Hosts { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiHostMetricsRecord> Metrics { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiVmRecord> Vms { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiVmGuestMetricsRecord> Guests { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiSrRecord> Srs { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiVdiRecord> Vdis { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiVbdRecord> Vbds { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, XapiPbdRecord> Pbds { get; } = new(StringComparer.Ordinal);

    /// <summary>Applies one <c>event.from</c> batch: an add or mod replaces the record, a del removes it.</summary>
    public void Apply(JsonArray? events)
    {
        foreach (var e in events ?? [])
        {
            if (e?["ref"]?.ToString() is not { Length: > 0 } r || e["class"]?.ToString() is not { } cls)
            {
                continue;
            }

            var snapshot = e["operation"]?.ToString() == "del" ? null : e["snapshot"] as JsonObject;
            if (snapshot is null && e["operation"]?.ToString() != "del")
            {
                // CA-91931: an object gone before its snapshot could be taken comes without one; its del follows.
                continue;
            }

            switch (cls.ToLowerInvariant())
            {
                case "pool": Put(Pools, r, snapshot, XapiPoolRecord.From); break;
                case "host": Put(Hosts, r, snapshot, XapiHostRecord.From); break;
                case "host_metrics": Put(Metrics, r, snapshot, XapiHostMetricsRecord.From); break;
                case "vm": Put(Vms, r, snapshot, XapiVmRecord.From); break;
                case "vm_guest_metrics": Put(Guests, r, snapshot, XapiVmGuestMetricsRecord.From); break;
                case "sr": Put(Srs, r, snapshot, XapiSrRecord.From); break;
                case "vdi": Put(Vdis, r, snapshot, XapiVdiRecord.From); break;
                case "vbd": Put(Vbds, r, snapshot, XapiVbdRecord.From); break;
                case "pbd": Put(Pbds, r, snapshot, XapiPbdRecord.From); break;
            }
        }
    }

    private static void Put<T>(Dictionary<string, T> table, string r, JsonObject? snapshot, Func<string, JsonObject, T> from)
    {
        if (snapshot is null)
        {
            table.Remove(r);
        }
        else
        {
            table[r] = from(r, snapshot);
        }
    }
}
