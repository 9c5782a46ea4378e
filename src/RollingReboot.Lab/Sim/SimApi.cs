using System.Globalization;
using System.Text.Json.Nodes;

namespace RollingReboot.Lab.Sim;

/// <summary>An error raised before dispatch (emergency mode): JSON-RPC sends it as a bare array with id 0.</summary>
public sealed class PreDispatchError(string code, params string[] parameters) : Exception(code)
{
    public PreDispatchError() : this("INTERNAL_ERROR") { }

    public PreDispatchError(string code, Exception inner) : this(code, inner.Message) { }

    public string Code { get; } = code;

    public IReadOnlyList<string> Parameters { get; } = parameters;
}

/// <summary>The XenAPI surface of the simulated pool: preconditions and error codes as XAPI has them.</summary>
internal sealed partial class SimPool
{
    private static readonly HashSet<string> s_noSession = ["session.login_with_password", "session.slave_local_login_with_password", "system.listMethods", "system.methodSignature"];
    private static readonly string[] s_nameLabelClasses = ["host", "VM", "SR", "network", "pool", "VDI", "task"];

    /// <summary>Runs one call received by <paramref name="receiver"/>. Long operations complete outside the lock.</summary>
    public async Task<JsonNode?> CallAsync(string receiverAddress, string method, List<JsonNode?> args, CancellationToken cancellationToken)
    {
        Task<JsonNode?>? pending;
        lock (_gate)
        {
            Advance();
            // A call is handled at one simulated instant: what it starts and records carries the moment it arrived.
            using var instant = AtInstant(Now);
            var receiver = Hosts.First(h => h.Address == receiverAddress);
            if (receiver.Power == HostPower.Down)
            {
                throw new PreDispatchError("HOST_OFFLINE", receiver.Ref);
            }

            if (receiver.ToolstackReadyAt > Now)
            {
                throw new PreDispatchError("HOST_STILL_BOOTING");
            }

            if (receiver != Master && method is not ("system.listMethods" or "system.methodSignature"))
            {
                throw new XapiError("HOST_IS_SLAVE", Master.Address);
            }

            if (Master.Power == HostPower.Down)
            {
                throw new PreDispatchError("HOST_OFFLINE", Master.Ref);
            }

            SimSession? session = null;
            if (!s_noSession.Contains(method))
            {
                var sref = Str(args, 0, method);
                if (!Sessions.TryGetValue(sref, out session))
                {
                    throw new XapiError("SESSION_INVALID", sref);
                }

                if (RandomFault("sessionInvalid"))
                {
                    Sessions.Remove(sref);
                    throw new XapiError("SESSION_INVALID", sref);
                }

                args = args.Skip(1).ToList();
            }

            if (method.StartsWith("Async.", StringComparison.Ordinal))
            {
                var inner = method[6..];
                if (inner.StartsWith("session.", StringComparison.Ordinal) || inner.StartsWith("event.", StringComparison.Ordinal) || inner.StartsWith("task.", StringComparison.Ordinal))
                {
                    throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
                }

                var task = NewTask(inner, session);
                Task<JsonNode?>? started;
                try
                {
                    started = Dispatch(inner, args, session, task);
                }
                catch (XapiError)
                {
                    // Refused before it started: the caller gets the error and never the task, so none may linger.
                    Tasks.Remove(task.Ref);
                    Touch("task", task.Ref, "del");
                    throw;
                }

                if (started is not null)
                {
                    _ = CompleteWhenDoneAsync(task, started);
                }

                return task.Ref;
            }

            pending = Dispatch(method, args, session, null);
            if (pending is null)
            {
                throw new InvalidOperationException("dispatch returned nothing");
            }

            if (pending.IsCompleted)
            {
                return pending.Result;
            }
        }

        if (method == "event.from")
        {
            return await pending.WaitAsync(cancellationToken);
        }

        return await pending.WaitAsync(cancellationToken);
    }

    private SimTask NewTask(string name, SimSession? session)
    {
        var task = new SimTask { Ref = NewRef(), Uuid = Guid.NewGuid().ToString(), NameLabel = "Async." + name, Created = NowTime, SessionRef = session?.Ref };
        Tasks[task.Ref] = task;
        Touch("task", task.Ref, "add");
        return task;
    }

    private async Task CompleteWhenDoneAsync(SimTask task, Task<JsonNode?> work)
    {
        try
        {
            var result = await work;
            lock (_gate)
            {
                var value = result?.ToString() ?? "";
                var text = value.Length == 0 ? "" : "<value>" + System.Net.WebUtility.HtmlEncode(value) + "</value>";
                CompleteTask(task, "success", text, []);
            }
        }
        catch (XapiError e)
        {
            lock (_gate)
            {
                CompleteTask(task, e.Code == "TASK_CANCELLED" ? "cancelled" : "failure", "", [e.Code, .. e.Parameters]);
            }
        }
    }

    /// <summary>Runs a method under the gate; returns a completed task, or one that completes later.</summary>
    private Task<JsonNode?> Dispatch(string method, List<JsonNode?> a, SimSession? session, SimTask? asyncTask)
    {
        var dot = method.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0)
        {
            throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        var cls = ApiClass(method[..dot]) ?? (method[..dot] == "event" || method[..dot] == "system" ? method[..dot] : null);
        var name = method[(dot + 1)..];
        if (cls is null)
        {
            throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        var m = cls + "." + name;
        switch (m)
        {
            case "session.login_with_password":
            case "session.slave_local_login_with_password":
                Arity(m, a, 2, 4);
                return Done(Login(Str(a, 0, m), Str(a, 1, m), a.Count > 3 ? Str(a, 3, m) : ""));
            case "session.logout":
                Arity(m, a, 0, 0);
                Sessions.Remove(session!.Ref);
                return Done("");
            case "system.listMethods":
                return Done(new JsonArray(ListMethods().Select(x => (JsonNode?)x).ToArray()));
            case "event.from":
                Arity(m, a, 3, 3);
                return EventFrom(a[0], Str(a, 1, m), Num(a, 2, m));
            case "event.inject":
                Arity(m, a, 2, 2);
                Resolve(ApiClass(Str(a, 0, m)) ?? throw new XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", m), Str(a, 1, m));
                Touch(EventClass(Str(a, 0, m)), Str(a, 1, m), "mod");
                return Done(EventId.ToString("D20", CultureInfo.InvariantCulture));
        }

        if (cls is "event" or "system")
        {
            throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        // Generic getters every class has.
        if (name == "get_all")
        {
            Arity(m, a, 0, 0);
            return Done(new JsonArray(RefsOf(cls).Select(r => (JsonNode?)r).ToArray()));
        }

        if (name == "get_all_records")
        {
            Arity(m, a, 0, 0);
            var all = new JsonObject();
            foreach (var r in RefsOf(cls).ToList())
            {
                all[r] = Record(cls, r);
            }

            return Done(all);
        }

        if (name == "get_record")
        {
            Arity(m, a, 1, 1);
            return Done(Resolve(cls, Str(a, 0, m)));
        }

        if (name == "get_by_uuid")
        {
            Arity(m, a, 1, 1);
            var uuid = Str(a, 0, m);
            var r = RefsOf(cls).FirstOrDefault(r => UuidOf(cls, r) == uuid) ?? throw new XapiError("UUID_INVALID", cls, uuid);
            return Done(r);
        }

        if (name == "get_by_name_label" && s_nameLabelClasses.Contains(cls))
        {
            Arity(m, a, 1, 1);
            var label = Str(a, 0, m);
            return Done(new JsonArray(RefsOf(cls).Where(r => Record(cls, r)?["name_label"]?.ToString() == label).Select(r => (JsonNode?)r).ToArray()));
        }

        if (name.StartsWith("get_", StringComparison.Ordinal) && !IsSpecialGetter(m))
        {
            Arity(m, a, 1, 1);
            var record = Resolve(cls, Str(a, 0, m));
            var field = name[4..];
            return record.TryGetPropertyValue(field, out var value)
                ? Done(value?.DeepClone())
                : throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        }

        return m switch
        {
            "pool.disable_ha" => PoolDisableHa(m, a),
            "pool.enable_ha" => PoolEnableHa(m, a),
            "pool.set_ha_host_failures_to_tolerate" => PoolSetNtol(m, a),
            "pool.set_ha_allow_overcommit" => PoolSetOvercommit(m, a),
            "pool.add_to_other_config" => PoolAddOtherConfig(m, a),
            "pool.remove_from_other_config" => PoolRemoveOtherConfig(m, a),
            "pool.designate_new_master" => throw new XapiError(HaEnabled ? "HA_IS_ENABLED" : "OPERATION_NOT_ALLOWED", "not simulated by the lab"),
            "host.disable" => HostDisable(m, a),
            "host.enable" => HostEnable(m, a),
            "host.reboot" => HostReboot(m, a, powerOff: false),
            "host.shutdown" => HostReboot(m, a, powerOff: true),
            "host.power_on" => HostPowerOn(m, a),
            "host.evacuate" => HostEvacuate(m, a, asyncTask),
            "host.get_vms_which_prevent_evacuation" => HostPreventing(m, a),
            "host.assert_can_evacuate" => HostAssertCanEvacuate(m, a),
            "host.compute_free_memory" => HostFreeMemory(m, a),
            "host.get_servertime" or "host.get_server_localtime" => HostServerTime(m, a),
            "host.apply_updates" when Profile.HasApplyUpdates => HostApplyUpdates(m, a),
            "host.restart_agent" => HostRestartAgent(m, a),
            "VM.pool_migrate" => VmPoolMigrate(m, a, asyncTask),
            "VM.assert_can_boot_here" => VmAssertCanBootHere(m, a),
            "task.cancel" => TaskCancel(m, a),
            "task.destroy" => TaskDestroy(m, a),
            _ => throw new XapiError("MESSAGE_METHOD_UNKNOWN", method),
        };
    }

    private static bool IsSpecialGetter(string m) => m is "host.get_vms_which_prevent_evacuation" or "host.get_servertime" or "host.get_server_localtime";

    internal IEnumerable<string> ListMethods()
    {
        var methods = new List<string> { "session.login_with_password", "session.logout", "system.listMethods", "event.from", "event.inject" };
        foreach (var c in ApiClasses.Where(c => c != "session"))
        {
            methods.AddRange(new[] { "get_all", "get_all_records", "get_record", "get_by_uuid" }.Select(x => c + "." + x));
            if (RefsOf(c).FirstOrDefault() is { } r && Record(c, r) is { } rec)
            {
                methods.AddRange(rec.Select(kv => c + ".get_" + kv.Key));
            }
        }

        string[] actions =
        [
            "pool.disable_ha", "pool.enable_ha", "pool.set_ha_host_failures_to_tolerate", "pool.set_ha_allow_overcommit", "pool.add_to_other_config",
            "pool.remove_from_other_config", "host.disable", "host.enable", "host.reboot", "host.shutdown", "host.power_on", "host.evacuate",
            "host.get_vms_which_prevent_evacuation", "host.assert_can_evacuate", "host.compute_free_memory", "host.get_servertime", "host.get_server_localtime",
            "host.restart_agent", "VM.pool_migrate", "VM.assert_can_boot_here", "task.cancel", "task.destroy",
            .. Profile.HasApplyUpdates ? (string[])["host.apply_updates"] : [],
        ];
        methods.AddRange(actions);
        methods.AddRange(actions.Where(x => !x.StartsWith("task.", StringComparison.Ordinal)).Select(x => "Async." + x));
        return methods.Distinct();
    }

    // ---- helpers -------------------------------------------------------------------------------

    private static Task<JsonNode?> Done(JsonNode? value) => Task.FromResult(value);

    private static Task<JsonNode?> Done(string value) => Task.FromResult<JsonNode?>(JsonValue.Create(value));

    private static void Arity(string method, List<JsonNode?> a, int min, int max)
    {
        if (a.Count < min || a.Count > max)
        {
            // XAPI counts the session in "expected" and "received".
            throw new XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, (max + 1).ToString(CultureInfo.InvariantCulture), (a.Count + 1).ToString(CultureInfo.InvariantCulture));
        }
    }

    private static string Str(List<JsonNode?> a, int i, string method) =>
        i < a.Count && a[i] is JsonValue v && v.TryGetValue<string>(out var s) ? s
        : i < a.Count && a[i] is JsonValue n ? n.ToString()
        : throw new XapiError("FIELD_TYPE_ERROR", method + " parameter " + i.ToString(CultureInfo.InvariantCulture));

    private static double Num(List<JsonNode?> a, int i, string method) =>
        i < a.Count && a[i] is JsonValue v && (v.TryGetValue<double>(out var d) || TryInteger(v, out d) || (v.TryGetValue<string>(out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d)))
            ? d
            : throw new XapiError("FIELD_TYPE_ERROR", method + " parameter " + i.ToString(CultureInfo.InvariantCulture));

    // An XML-RPC <int>/<i4>/<i8> arrives as a long (JSON-RPC numbers as JSON elements, which convert to double).
    private static bool TryInteger(JsonValue v, out double d)
    {
        var ok = v.TryGetValue<long>(out var l);
        d = l;
        return ok;
    }

    private static bool Bool(List<JsonNode?> a, int i, string method) =>
        i < a.Count && a[i] is JsonValue v && (v.TryGetValue<bool>(out var b) || (v.TryGetValue<string>(out var s) && bool.TryParse(s, out b)))
            ? b
            : throw new XapiError("FIELD_TYPE_ERROR", method + " parameter " + i.ToString(CultureInfo.InvariantCulture));

    private JsonObject Resolve(string cls, string r) =>
        Record(cls, r) ?? throw new XapiError("HANDLE_INVALID", cls, r);

    private SimHost HostArg(List<JsonNode?> a, int i, string method)
    {
        var r = Str(a, i, method);
        return Hosts.FirstOrDefault(h => h.Ref == r) ?? throw new XapiError("HANDLE_INVALID", "host", r);
    }

    private SimVm VmArg(List<JsonNode?> a, int i, string method)
    {
        var r = Str(a, i, method);
        return VmsByRef.TryGetValue(r, out var vm) ? vm : throw new XapiError("HANDLE_INVALID", "VM", r);
    }

    private void PoolArg(List<JsonNode?> a, int i, string method)
    {
        if (Str(a, i, method) != PoolRef)
        {
            throw new XapiError("HANDLE_INVALID", "pool", Str(a, i, method));
        }
    }

    private string Login(string user, string password, string originator)
    {
        if (user != User || password != Password)
        {
            throw new XapiError("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure");
        }

        // XAPI keeps at most 500 sessions per user and originator: the oldest go.
        var same = Sessions.Values.Where(s => s.User == user && s.Originator == originator).OrderBy(s => s.CreatedAt).ToList();
        foreach (var old in same.Take(Math.Max(0, same.Count - 499)))
        {
            Sessions.Remove(old.Ref);
        }

        var session = new SimSession(NewRef(), Guid.NewGuid().ToString(), user, originator, Now);
        Sessions[session.Ref] = session;
        return session.Ref;
    }

    // ---- event.from ----------------------------------------------------------------------------

    private Task<JsonNode?> EventFrom(JsonNode? classesNode, string token, double timeout)
    {
        List<string> classes = classesNode switch
        {
            JsonArray arr => arr.Select(c => c?.ToString() ?? "").ToList(),
            JsonValue v => [v.ToString()],
            _ => [],
        };
        var subs = classes.Select(c =>
        {
            var slash = c.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? (Class: c.ToLowerInvariant(), Ref: (string?)null) : (Class: c[..slash].ToLowerInvariant(), Ref: c[(slash + 1)..]);
        }).ToList();
        if (subs.Any(s => s.Class != "*" && ApiClass(s.Class) is null))
        {
            throw new XapiError("EVENTS_LOST");
        }

        if (token.Length == 0)
        {
            return Done(EventBatch(subs, null));
        }

        if (!long.TryParse(token.Split(',')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var from) || from < EventLogStart)
        {
            throw new XapiError("EVENTS_LOST");
        }

        var immediate = EventBatch(subs, from);
        if (immediate["events"] is JsonArray { Count: > 0 } || timeout <= 0)
        {
            return Done(immediate);
        }

        return WaitForEventsAsync(subs, from, Now + Math.Min(timeout, 3600));
    }

    private async Task<JsonNode?> WaitForEventsAsync(List<(string Class, string? Ref)> subs, long from, double until)
    {
        while (true)
        {
            Task changed;
            double remaining;
            lock (_gate)
            {
                Advance();
                var batch = EventBatch(subs, from);
                remaining = until - Now;
                if (batch["events"] is JsonArray { Count: > 0 } || remaining <= 0)
                {
                    return batch;
                }

                changed = ChangedTask;
            }

            var scale = _clock is Core.Time.ScaledTimeProvider s ? s.Scale : 1.0;
            var wall = TimeSpan.FromSeconds(Math.Max(0.001, remaining / scale));
            await Task.WhenAny(changed, Task.Delay(wall, TimeProvider.System));
        }
    }

    private JsonObject EventBatch(List<(string Class, string? Ref)> subs, long? from)
    {
        bool Wanted(string cls, string r) => subs.Any(s => (s.Class == "*" || s.Class == cls) && (s.Ref is null || s.Ref == r));
        var events = new JsonArray();
        // int, not long: xapi sends these as ocaml-rpc Int32, <i4> over XML-RPC (event_types.ml rpc_of_event_from).
        var counts = new Dictionary<string, int>();
        if (from is null)
        {
            foreach (var c in ApiClasses)
            {
                var ec = EventClass(c);
                foreach (var r in RefsOf(c))
                {
                    if (Wanted(ec, r))
                    {
                        events.Add(EventObject(c, ec, r, "add"));
                        counts[ec] = counts.GetValueOrDefault(ec) + 1;
                    }
                }
            }
        }
        else
        {
            // Coalesce: one event per object, its latest operation, with the current snapshot.
            var latest = new Dictionary<(string, string), (long Id, string Op)>();
            foreach (var e in EventsAfter(from.Value))
            {
                if (Wanted(e.Class, e.Ref))
                {
                    var key = (e.Class, e.Ref);
                    var op = latest.TryGetValue(key, out var prev) && prev.Op == "add" && e.Op == "mod" ? "add" : e.Op;
                    latest[key] = (e.Id, op);
                }
            }

            foreach (var ((cls, r), (_, op)) in latest.OrderBy(kv => kv.Value.Id))
            {
                var api = ApiClass(cls) ?? cls;
                events.Add(EventObject(api, cls, r, op));
                counts[cls] = counts.GetValueOrDefault(cls) + 1;
            }
        }

        return new JsonObject
        {
            ["events"] = events,
            ["valid_ref_counts"] = new JsonObject(counts.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["token"] = EventId.ToString("D20", CultureInfo.InvariantCulture),
        };
    }

    private JsonObject EventObject(string apiClass, string eventClass, string r, string op)
    {
        var snapshot = Record(apiClass, r) ?? DeletedSnapshot(r);
        var o = new JsonObject
        {
            ["id"] = EventId.ToString("D20", CultureInfo.InvariantCulture),
            ["timestamp"] = ((NowTime - DateTimeOffset.UnixEpoch).TotalSeconds).ToString("0.000000", CultureInfo.InvariantCulture),
            ["class"] = eventClass,
            ["operation"] = snapshot is null ? "del" : op,
            ["ref"] = r,
        };
        if (snapshot is not null)
        {
            o["snapshot"] = snapshot.DeepClone();
        }

        return o;
    }

    // ---- pool ----------------------------------------------------------------------------------

    private Task<JsonNode?> PoolDisableHa(string m, List<JsonNode?> a)
    {
        Arity(m, a, 0, 0);
        if (!HaEnabled)
        {
            throw new XapiError("HA_NOT_ENABLED");
        }

        NoteStateChange();
        HaEnabled = false;
        foreach (var vdiRef in HaStatefiles)
        {
            if (Vdis.Remove(vdiRef, out var vdi))
            {
                vdi.Sr.VdiRefs.Remove(vdiRef);
                Touch("vdi", vdiRef, "del");
            }
        }

        HaStatefiles = [];
        HaHeartbeatSrNames.Clear();
        HaConfiguration = [];
        Touch("pool", PoolRef, "mod");
        Audit.Event("ha.disable", new Dictionary<string, object?>());
        return Done("");
    }

    private Task<JsonNode?> PoolEnableHa(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2, 2);
        if (HaEnabled)
        {
            throw new XapiError("HA_IS_ENABLED");
        }

        if (Hosts.FirstOrDefault(h => !h.Live || h.Power != HostPower.Up) is { } offline)
        {
            throw new XapiError("HOST_OFFLINE", offline.Ref);
        }

        var srRefs = a[0] is JsonArray arr ? arr.Select(n => n?.ToString() ?? "").ToList() : throw new XapiError("FIELD_TYPE_ERROR", "heartbeat_srs");
        var config = a[1] is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "") : throw new XapiError("FIELD_TYPE_ERROR", "configuration");
        var srs = srRefs.Select(r => Srs.FirstOrDefault(s => s.Ref == r) ?? throw new XapiError("HANDLE_INVALID", "SR", r)).ToList();
        if (srs.Count == 0)
        {
            srs = [Srs.FirstOrDefault(s => s.Shared && s.ContentType != "iso") ?? throw new XapiError("CANNOT_CREATE_STATE_FILE")];
        }

        if (srs.FirstOrDefault(s => !s.Shared || s.ContentType == "iso") is { } bad)
        {
            throw new XapiError("CANNOT_CREATE_STATE_FILE", bad.Ref);
        }

        NoteStateChange();
        HaEnabled = true;
        HaStatefiles = srs.Select(CreateStatefile).ToList();
        HaHeartbeatSrNames.Clear();
        HaHeartbeatSrNames.AddRange(srs.Select(s => s.Name));
        HaConfiguration = config;
        Touch("pool", PoolRef, "mod");
        var effective = config.TryGetValue("timeout", out var t) ? t : PoolOtherConfig.GetValueOrDefault("default_ha_timeout", "60");
        Audit.Event("ha.enable", new Dictionary<string, object?>
        {
            ["heartbeatSrs"] = srs.Select(s => s.Name).ToList(),
            ["configuration"] = config,
            ["timeoutSeconds"] = effective,
            ["hostFailuresToTolerate"] = HaHostFailuresToTolerate,
            ["allowOvercommit"] = HaAllowOvercommit,
        });
        return Done("");
    }

    private Task<JsonNode?> PoolSetNtol(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2, 2);
        PoolArg(a, 0, m);
        var n = (long)Num(a, 1, m);
        if (n < 0)
        {
            throw new XapiError("INVALID_VALUE", "ha_host_failures_to_tolerate", n.ToString(CultureInfo.InvariantCulture));
        }

        NoteStateChange();
        HaHostFailuresToTolerate = n;
        Touch("pool", PoolRef, "mod");
        Audit.Event("ha.setHostFailuresToTolerate", new Dictionary<string, object?> { ["value"] = n });
        return Done("");
    }

    private Task<JsonNode?> PoolSetOvercommit(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2, 2);
        PoolArg(a, 0, m);
        NoteStateChange();
        HaAllowOvercommit = Bool(a, 1, m);
        Touch("pool", PoolRef, "mod");
        Audit.Event("ha.setAllowOvercommit", new Dictionary<string, object?> { ["value"] = HaAllowOvercommit });
        return Done("");
    }

    private Task<JsonNode?> PoolAddOtherConfig(string m, List<JsonNode?> a)
    {
        Arity(m, a, 3, 3);
        PoolArg(a, 0, m);
        var key = Str(a, 1, m);
        if (PoolOtherConfig.ContainsKey(key))
        {
            throw new XapiError("MAP_DUPLICATE_KEY", "pool", "other_config", PoolRef, key);
        }

        NoteStateChange();
        PoolOtherConfig[key] = Str(a, 2, m);
        Touch("pool", PoolRef, "mod");
        Audit.Event("pool.otherConfig.add", new Dictionary<string, object?> { ["key"] = key });
        return Done("");
    }

    private Task<JsonNode?> PoolRemoveOtherConfig(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2, 2);
        PoolArg(a, 0, m);
        var key = Str(a, 1, m);
        if (PoolOtherConfig.Remove(key))
        {
            NoteStateChange();
            Touch("pool", PoolRef, "mod");
            Audit.Event("pool.otherConfig.remove", new Dictionary<string, object?> { ["key"] = key });
        }

        return Done("");
    }

    // ---- host ----------------------------------------------------------------------------------

    private Task<JsonNode?> HostDisable(string m, List<JsonNode?> a)
    {
        // auto_enable (default true) arrived in 25.31.0 (idl/datamodel_host.ml disable); false persists host_auto_enable=false,
        // and only when the host was enabled (xapi/xapi_host.ml disable).
        Arity(m, a, 1, Profile.HasAutoEnable ? 2 : 1);
        var h = HostArg(a, 0, m);
        var autoEnable = a.Count < 2 || Bool(a, 1, m);
        NoteStateChange();
        if (h.Enabled)
        {
            h.Enabled = false;
            h.AutoEnable &= autoEnable;
            Touch("host", h.Ref, "mod");
        }

        Audit.Event("host.disable", new Dictionary<string, object?> { ["host"] = h.Name });
        return Done("");
    }

    private Task<JsonNode?> HostEnable(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var h = HostArg(a, 0, m);
        if (h.Power != HostPower.Up || !h.Live)
        {
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        if (h.ToolstackReadyAt > Now)
        {
            throw new XapiError("HOST_STILL_BOOTING");
        }

        if (h.CurrentOperations.Count > 0)
        {
            throw new XapiError("OTHER_OPERATION_IN_PROGRESS", "host", h.Ref);
        }

        // From 24.10.0 any pending mandatory guidance refuses a disabled host, reboot_host included (xapi/xapi_host.ml enable
        // -> assert_safe_to_reenable -> repository_helpers.ml assert_no_host_pending_mandatory_guidance). The code is
        // HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY, singular (xapi-consts/api_errors.ml). An enabled host is a no-op.
        if (!h.Enabled && Profile.GuidanceKeepsHostDisabled && h.PendingGuidances.Count > 0)
        {
            throw new XapiError("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", h.Ref, string.Join(",", h.PendingGuidances));
        }

        NoteStateChange();
        if (!h.Enabled)
        {
            h.Enabled = true;
            h.AutoEnable = true;
            Touch("host", h.Ref, "mod");
        }

        Audit.Event("host.enable", new Dictionary<string, object?> { ["host"] = h.Name });
        return Done("");
    }

    private Task<JsonNode?> HostReboot(string m, List<JsonNode?> a, bool powerOff)
    {
        Arity(m, a, 1, 1);
        var h = HostArg(a, 0, m);
        if (h.Enabled)
        {
            throw new XapiError("HOST_NOT_DISABLED");
        }

        if (h.Power != HostPower.Up || h.CurrentOperations.Count > 0)
        {
            throw new XapiError("OTHER_OPERATION_IN_PROGRESS", "host", h.Ref);
        }

        NoteStateChange();
        var resident = Vms.Count(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain);
        Audit.Event(powerOff ? "host.shutdown" : "host.reboot", new Dictionary<string, object?> { ["host"] = h.Name, ["residentVms"] = resident });
        ScheduleShutdown(h, powerOff);
        return Done("");
    }

    private Task<JsonNode?> HostPowerOn(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var h = HostArg(a, 0, m);
        if (h.Power != HostPower.Down)
        {
            throw new XapiError("HOST_IS_LIVE", h.Ref);
        }

        NoteStateChange();
        Audit.Event("host.powerOn", new Dictionary<string, object?> { ["host"] = h.Name });
        PowerOn(h);
        return Done("");
    }

    /// <summary>
    /// host.apply_updates(self, hash) (idl/datamodel_host.ml, 1.301.0), in xapi's order (xapi/xapi_host.ml apply_updates,
    /// then xapi/repository.ml apply_updates and apply_updates'): HA on refuses with HA_IS_ENABLED []; from 24.10.0 the
    /// host is disabled first (if enabled), so even a refusal below leaves it disabled; a busy host is refused; from 24.10.0
    /// pending mandatory guidance refuses (HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY [host]); then the update repository:
    /// the lab has none on XCP-ng (its updates go through yum, NO_REPOSITORY_ENABLED []) and on XenServer accepts any
    /// non-empty hash (an empty one is UPDATEINFO_HASH_MISMATCH []); from 24.10.0 an update that needs a reboot refuses a
    /// host still running VMs (HOST_EVACUATION_IS_REQUIRED [host], repository_helpers.ml assert_host_evacuation_if_required).
    /// The lab's update always needs a reboot: mandatory guidance reboot_host (from 1.303.0, when the field exists).
    /// </summary>
    private Task<JsonNode?> HostApplyUpdates(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2, 2);
        var h = HostArg(a, 0, m);
        var hash = Str(a, 1, m);
        if (HaEnabled)
        {
            throw new XapiError("HA_IS_ENABLED");
        }

        NoteStateChange();
        if (Profile.GuidanceKeepsHostDisabled && h.Enabled)
        {
            h.Enabled = false;
            Touch("host", h.Ref, "mod");
            Audit.Event("host.disable", new Dictionary<string, object?> { ["host"] = h.Name, ["by"] = "host.apply_updates" });
        }

        if (h.Power != HostPower.Up || h.CurrentOperations.Count > 0)
        {
            throw new XapiError("OTHER_OPERATION_IN_PROGRESS", "host", h.Ref);
        }

        if (Profile.GuidanceKeepsHostDisabled && h.PendingGuidances.Count > 0)
        {
            throw new XapiError("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", h.Ref);
        }

        if (Profile.IsXcpNg)
        {
            throw new XapiError("NO_REPOSITORY_ENABLED");
        }

        if (hash.Length == 0)
        {
            throw new XapiError("UPDATEINFO_HASH_MISMATCH");
        }

        if (Profile.GuidanceKeepsHostDisabled && Vms.Any(v => v.ResidentOn == h && !v.IsControlDomain))
        {
            throw new XapiError("HOST_EVACUATION_IS_REQUIRED", h.Ref);
        }

        if (Profile.HasPendingGuidances && !h.PendingGuidances.Contains("reboot_host"))
        {
            h.PendingGuidances.Add("reboot_host");
        }

        Touch("host", h.Ref, "mod");
        Audit.Event("host.applyUpdates", new Dictionary<string, object?> { ["host"] = h.Name, ["pendingGuidances"] = h.PendingGuidances.ToList(), ["enabled"] = h.Enabled });
        return Done(new JsonArray());
    }

    /// <summary>host.restart_agent(host) (idl/datamodel_host.ml, rio): the toolstack restarts after 10 s.</summary>
    private Task<JsonNode?> HostRestartAgent(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var h = HostArg(a, 0, m);
        if (h.Power != HostPower.Up)
        {
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        NoteStateChange();
        Audit.Event("host.restartAgent", new Dictionary<string, object?> { ["host"] = h.Name });
        ScheduleToolstackRestart(h);
        return Done("");
    }

    /// <summary>Why a VM cannot leave its host for <paramref name="target"/> (null target: for any host).</summary>
    private string[]? MoveBlocker(SimVm vm, SimHost? target)
    {
        if (vm.Pci)
        {
            return ["VM_HAS_PCI_ATTACHED", vm.Ref];
        }

        if (vm.Vgpu)
        {
            return ["VM_HAS_VGPU", vm.Ref];
        }

        if (vm.Vusb)
        {
            return ["VM_HAS_VUSBS", vm.Ref];
        }

        if (!vm.PvDrivers)
        {
            return ["VM_LACKS_FEATURE", vm.Ref];
        }

        foreach (var vbdRef in vm.VbdRefs)
        {
            if (Vbds[vbdRef].Vdi?.Sr is { Shared: false } sr && (target is null || sr.Host != target))
            {
                return ["VM_REQUIRES_SR", vm.Ref, sr.Ref];
            }
        }

        return null;
    }

    private Dictionary<SimVm, string[]> Preventing(SimHost h)
    {
        var result = new Dictionary<SimVm, string[]>();
        var free = Hosts.Where(x => x != h && x.Enabled && x.Live && x.Power == HostPower.Up).ToDictionary(x => x, FreeBytes);
        foreach (var vm in Vms.Where(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain).OrderByDescending(v => v.NeededBytes))
        {
            if (MoveBlocker(vm, null) is { } blocker)
            {
                result[vm] = blocker;
                continue;
            }

            if (HaEnabled && vm.HaRestartPriority != "restart")
            {
                result[vm] = ["HOST_EVACUATE_VM_NOT_HA_PROTECTED", vm.Ref];
                continue;
            }

            var target = free.Where(kv => kv.Value >= vm.NeededBytes).OrderByDescending(kv => kv.Value).Select(kv => kv.Key).FirstOrDefault();
            if (target is null)
            {
                result[vm] = ["HOST_NOT_ENOUGH_FREE_MEMORY", vm.NeededBytes.ToString(CultureInfo.InvariantCulture), free.Values.DefaultIfEmpty(0).Max().ToString(CultureInfo.InvariantCulture)];
                continue;
            }

            free[target] -= vm.NeededBytes;
        }

        return result;
    }

    private Task<JsonNode?> HostPreventing(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var h = HostArg(a, 0, m);
        var o = new JsonObject();
        foreach (var (vm, reason) in Preventing(h))
        {
            o[vm.Ref] = new JsonArray(reason.Select(x => (JsonNode?)x).ToArray());
        }

        return Done(o);
    }

    private Task<JsonNode?> HostAssertCanEvacuate(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var h = HostArg(a, 0, m);
        var p = Preventing(h);
        if (p.Count > 0)
        {
            throw new XapiError("CANNOT_EVACUATE_HOST", string.Join("|", p.Select(kv => kv.Key.Ref + "," + string.Join(",", kv.Value))));
        }

        return Done("");
    }

    private Task<JsonNode?> HostFreeMemory(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        return Done(JsonValue.Create(FreeBytes(HostArg(a, 0, m))));
    }

    private Task<JsonNode?> HostServerTime(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var h = HostArg(a, 0, m);
        if (h.Power == HostPower.Down)
        {
            throw new XapiError("HOST_OFFLINE", h.Ref);
        }

        return Done(Date(NowTime));
    }

    private Task<JsonNode?> HostEvacuate(string m, List<JsonNode?> a, SimTask? task)
    {
        // network from 1.297.0, evacuate_batch_size from v23.28.0 (see XapiProfile). Batches of evacuate_batch_size, else
        // xapi.conf evacuation-batch-size (default 10), from 22.24.0; before, one VM at a time (v1.249.41 xapi/xapi_host.ml).
        var max = Profile.EvacuateTakesBatchSize ? 3 : Profile.EvacuateTakesNetwork ? 2 : 1;
        Arity(m, a, 1, max);
        var h = HostArg(a, 0, m);
        var asked = a.Count >= 3 ? (long)Num(a, 2, m) : 0;
        var batch = !Profile.EvacuatesInParallel ? 1 : asked > 0 ? (int)Math.Min(asked, int.MaxValue) : 10;
        if (HaEnabled && Vms.FirstOrDefault(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain && v.HaRestartPriority != "restart") is { } unprotected)
        {
            throw new XapiError("HOST_EVACUATE_VM_NOT_HA_PROTECTED", unprotected.Ref);
        }

        var preventing = Preventing(h);
        if (preventing.Count > 0)
        {
            var (vm, reason) = preventing.First();
            throw new XapiError(reason[0] == "HOST_NOT_ENOUGH_FREE_MEMORY" ? "NO_HOSTS_AVAILABLE" : reason[0], reason[0] == "HOST_NOT_ENOUGH_FREE_MEMORY" ? [vm.Ref] : reason[1..]);
        }

        NoteStateChange();
        Audit.Event("host.evacuate", new Dictionary<string, object?> { ["host"] = h.Name, ["batch"] = batch });
        var queue = new Queue<SimVm>(Vms.Where(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain).OrderByDescending(v => v.NeededBytes));
        return EvacuateAsync(h, queue, batch, task);
    }

    private async Task<JsonNode?> EvacuateAsync(SimHost h, Queue<SimVm> queue, int batch, SimTask? task)
    {
        var total = Math.Max(1, queue.Count);
        var done = 0;
        var running = new List<Task>();
        while (true)
        {
            lock (_gate)
            {
                while (running.Count < batch && queue.Count > 0)
                {
                    var vm = queue.Dequeue();
                    // XAPI's own choice: the live enabled host with the most free memory, rebooted or not.
                    var target = Hosts.Where(x => x != h && x.Enabled && x.Live && x.Power == HostPower.Up && FreeBytes(x) >= vm.NeededBytes)
                        .OrderByDescending(FreeBytes).FirstOrDefault() ?? throw new XapiError("NO_HOSTS_AVAILABLE", vm.Ref);
                    running.Add(StartMigration(vm, target, null).Done.Task);
                }

                if (running.Count == 0)
                {
                    return "";
                }
            }

            var finished = await Task.WhenAny(running);
            running.Remove(finished);
            await finished;
            done++;
            if (task is not null)
            {
                lock (_gate)
                {
                    task.Progress = (double)done / total;
                    Touch("task", task.Ref, "mod");
                }
            }
        }
    }

    // ---- VM ------------------------------------------------------------------------------------

    private void CheckCanRunOn(SimVm vm, SimHost target)
    {
        if (!target.Live || target.Power != HostPower.Up)
        {
            throw new XapiError("HOST_NOT_LIVE", target.Ref);
        }

        if (!target.Enabled)
        {
            throw new XapiError("HOST_DISABLED", target.Ref);
        }

        foreach (var vbdRef in vm.VbdRefs)
        {
            if (Vbds[vbdRef].Vdi?.Sr is { Shared: false } sr && sr.Host != target)
            {
                throw new XapiError("VM_REQUIRES_SR", vm.Ref, sr.Ref);
            }
        }

        var free = FreeBytes(target);
        if (vm.ResidentOn != target && free < vm.NeededBytes)
        {
            throw new XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", vm.NeededBytes.ToString(CultureInfo.InvariantCulture), free.ToString(CultureInfo.InvariantCulture));
        }
    }

    private Task<JsonNode?> VmPoolMigrate(string m, List<JsonNode?> a, SimTask? task)
    {
        Arity(m, a, 3, 3);
        var vm = VmArg(a, 0, m);
        var target = HostArg(a, 1, m);
        var options = a[2] is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "") : throw new XapiError("FIELD_TYPE_ERROR", "options");
        if (vm.IsControlDomain)
        {
            throw new XapiError("OPERATION_NOT_ALLOWED", "the control domain cannot be migrated");
        }

        if (vm.PowerState != "Running")
        {
            throw new XapiError("VM_BAD_POWER_STATE", vm.Ref, "running", vm.PowerState.ToLowerInvariant());
        }

        if (vm.CurrentOperations.Count > 0)
        {
            throw new XapiError("OTHER_OPERATION_IN_PROGRESS", "VM", vm.Ref);
        }

        if (vm.ResidentOn == target)
        {
            throw new XapiError("HOST_CANNOT_ATTACH_NETWORK", target.Ref, NetworkRef);
        }

        if (vm.ResidentOn is not { Power: HostPower.Up })
        {
            throw new XapiError("HOST_NOT_LIVE", vm.ResidentOn?.Ref ?? "OpaqueRef:NULL");
        }

        if (MoveBlocker(vm, target) is { } blocker)
        {
            throw new XapiError(blocker[0], blocker[1..]);
        }

        CheckCanRunOn(vm, target);
        NoteStateChange();
        var migration = StartMigration(vm, target, task, options);
        return migration.Done.Task.ContinueWith<JsonNode?>(
            t => t.IsCompletedSuccessfully ? JsonValue.Create("") : throw t.Exception!.InnerException!,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private Task<JsonNode?> VmAssertCanBootHere(string m, List<JsonNode?> a)
    {
        Arity(m, a, 2, 2);
        var vm = VmArg(a, 0, m);
        var target = HostArg(a, 1, m);
        CheckCanRunOn(vm, target);
        return Done("");
    }

    // ---- task ----------------------------------------------------------------------------------

    private Task<JsonNode?> TaskCancel(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var r = Str(a, 0, m);
        if (!Tasks.TryGetValue(r, out var task))
        {
            throw new XapiError("HANDLE_INVALID", "task", r);
        }

        if (task.Migration is { } mig && task.Status == "pending" && ActiveMigrations.Contains(mig))
        {
            CancelMigration(mig);
        }

        return Done("");
    }

    private Task<JsonNode?> TaskDestroy(string m, List<JsonNode?> a)
    {
        Arity(m, a, 1, 1);
        var r = Str(a, 0, m);
        if (!Tasks.TryGetValue(r, out var task))
        {
            throw new XapiError("HANDLE_INVALID", "task", r);
        }

        RememberDeleted(r, Record("task", r)!);
        Tasks.Remove(r);
        Touch("task", task.Ref, "del");
        return Done("");
    }
}
