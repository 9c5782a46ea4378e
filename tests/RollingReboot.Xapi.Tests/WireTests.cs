using System.Xml.Linq;
using RollingReboot.Xapi.Wire;

namespace RollingReboot.Xapi.Tests;

public sealed class WireTests
{
    [Theory]
    [InlineData("20240101T12:34:56Z", "2024-01-01T12:34:56+00:00")]
    [InlineData("2024-01-01T12:34:56Z", "2024-01-01T12:34:56+00:00")]
    [InlineData("20240101T12:34:56", "2024-01-01T12:34:56+00:00")]
    [InlineData("20240101T14:34:56+02:00", "2024-01-01T12:34:56+00:00")]
    [InlineData("20240101T10:34:56-0200", "2024-01-01T12:34:56+00:00")]
    [InlineData("2024-01-01T12:34:56.250Z", "2024-01-01T12:34:56.25+00:00")]
    public void XapiDateTime_EveryFormXapiSends_ParsesToUtc(string text, string expected)
    {
        Assert.True(XapiDateTime.TryParse(text, out var value));
        Assert.Equal(DateTimeOffset.ParseExact(expected, "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz", System.Globalization.CultureInfo.InvariantCulture), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("yesterday")]
    [InlineData("20241301T00:00:00Z")]
    [InlineData("20240101T12:34:56+25:00")]
    public void XapiDateTime_Garbage_IsRejected(string text) => Assert.False(XapiDateTime.TryParse(text, out _));

    [Fact]
    public void JsonRpc_ObjectError_CarriesCodeAndParameters()
    {
        var e = Assert.Throws<XapiException>(() => JsonRpc.DecodeResponse("""{"jsonrpc":"2.0","error":{"code":1,"message":"HOST_IS_SLAVE","data":["10.0.0.1"]},"id":3}""", "session.login_with_password"));
        Assert.Equal("HOST_IS_SLAVE", e.Code);
        Assert.Equal(["10.0.0.1"], e.Parameters);
    }

    [Fact]
    public void JsonRpc_BareArrayError_CarriesCodeAndParameters()
    {
        var e = Assert.Throws<XapiException>(() => JsonRpc.DecodeResponse("""{"jsonrpc":"2.0","error":["HOST_STILL_BOOTING","x"],"id":0}""", "VM.get_all"));
        Assert.Equal("HOST_STILL_BOOTING", e.Code);
        Assert.Equal(["x"], e.Parameters);
    }

    [Theory]
    [InlineData("""{"error":{"code":1,"message":"SESSION_INVALID"},"id":1}""", "SESSION_INVALID", 0)]
    [InlineData("""{"error":{"code":1,"message":"X","data":"not-an-array"},"id":1}""", "X", 1)]
    [InlineData("""{"error":{"code":1,"message":"Y","data":null},"id":1}""", "Y", 0)]
    [InlineData("""{"result":null,"error":["OLD_STYLE","p"],"id":1}""", "OLD_STYLE", 1)]
    public void JsonRpc_OddErrorShapes_BecomeXapiException(string body, string code, int parameterCount)
    {
        var e = Assert.Throws<XapiException>(() => JsonRpc.DecodeResponse(body, "m"));
        Assert.Equal(code, e.Code);
        Assert.Equal(parameterCount, e.Parameters.Count);

        // The typed decoder (large reads, no DOM) gives the same exception.
        var typed = Assert.Throws<XapiException>(() => JsonRpc.DecodeResponse(System.Text.Encoding.UTF8.GetBytes(body), "m", r => r.GetRawText()));
        Assert.Equal(code, typed.Code);
        Assert.Equal(e.Parameters, typed.Parameters);
        var records = Assert.Throws<XapiException>(() => JsonRpc.DecodeRecords(System.Text.Encoding.UTF8.GetBytes(body), "m", (r, _) => r));
        Assert.Equal(code, records.Code);
        Assert.Equal(e.Parameters, records.Parameters);
    }

    [Fact]
    public void JsonRpc_DecodeRecords_MapsEachRecordAndRefusesWhatIsNotAMap()
    {
        var body = System.Text.Encoding.UTF8.GetBytes("""
            {"id":1,"jsonrpc":"2.0","result":{"OpaqueRef:a":{"uuid":"ua","name_label":"vm a","memory_static_max":"2048","VBDs":["OpaqueRef:b1"]},
             "OpaqueRef:odd":"not a record","OpaqueRef:b":{"uuid":"ub","name_label":"vm b","memory_static_max":4096,"other_config":{"k":{"deep":[1]}}}}}
            """);
        var vms = JsonRpc.DecodeRecords(body, "VM.get_all_records", XapiVmRecord.From);
        Assert.Equal(["OpaqueRef:a", "OpaqueRef:b"], vms.Select(v => v.Ref));
        Assert.Equal((2048L, 4096L), (vms[0].MemoryStaticMax, vms[1].MemoryStaticMax));
        Assert.Equal(["OpaqueRef:b1"], vms[0].Vbds);
        Assert.Equal("""{"deep":[1]}""", vms[1].OtherConfig["k"]);

        Assert.Equal(XapiException.ProtocolError, Assert.Throws<XapiException>(() => JsonRpc.DecodeRecords(System.Text.Encoding.UTF8.GetBytes("""{"result":["x"],"id":1}"""), "m", (r, _) => r)).Code);
        Assert.Equal(XapiException.ProtocolError, Assert.Throws<XapiException>(() => JsonRpc.DecodeRecords(System.Text.Encoding.UTF8.GetBytes("""{"result":{"OpaqueRef:a":{"uuid":""}"""), "m", (r, _) => r)).Code);

        // JSON-RPC 1.0 sends both members: an error after a null result wins.
        var late = Assert.Throws<XapiException>(() => JsonRpc.DecodeRecords(System.Text.Encoding.UTF8.GetBytes("""{"result":null,"error":["SESSION_INVALID","s"],"id":1}"""), "m", (r, _) => r));
        Assert.Equal("SESSION_INVALID", late.Code);
    }

    /// <summary>A stream that hands out at most <c>chunk</c> bytes per read, as a reply arriving in pieces.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, chunk));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, chunk)], cancellationToken);
    }

    /// <summary>The body decoded whole, then streamed in pieces of several sizes (after <paramref name="prefix"/>, which the
    /// client strips before a whole decode): the same records or the same error.</summary>
    private static async Task DecodeAllWaysAsync(byte[] body, byte[] prefix)
    {
        static string Describe(Func<List<string>> decode)
        {
            try
            {
                return string.Join("|", decode());
            }
            catch (XapiException e)
            {
                return $"{e.Code}: {string.Join(",", e.Parameters.Where(p => !p.StartsWith("malformed", StringComparison.Ordinal)))}";
            }
        }

        static string Map(string r, System.Text.Json.JsonElement o) => r + "=" + o.GetRawText();
        var whole = Describe(() => JsonRpc.DecodeRecords(body, "m", Map));
        foreach (var chunk in new[] { 1, 2, 3, 7, 64, 100_000 })
        {
            List<string>? streamed = null;
            XapiException? error = null;
            try
            {
                streamed = await JsonRpc.DecodeRecordsAsync(new TrickleStream([.. prefix, .. body], chunk), "m", Map);
            }
            catch (XapiException e)
            {
                error = e;
            }

            var described = error is null ? string.Join("|", streamed!) : $"{error.Code}: {string.Join(",", error.Parameters.Where(p => !p.StartsWith("malformed", StringComparison.Ordinal)))}";
            Assert.Equal(whole, described);
        }
    }

    [Theory]
    [InlineData("""{"id":1,"jsonrpc":"2.0","result":{"OpaqueRef:a":{"uuid":"ua","n":12345,"l":["x","y"]},"OpaqueRef:odd":"not a record","OpaqueRef:b":{"uuid":"ub","o":{"k":{"deep":[1,2.5,true,null]}}}}}""")]
    [InlineData("""{"result":{},"id":1}""")]
    [InlineData("""{"result":["x"],"id":1}""")]
    [InlineData("""{"result":{"OpaqueRef:a":{"uuid":""}""")]
    [InlineData("""{"result":null,"error":["SESSION_INVALID","s"],"id":1}""")]
    [InlineData("""{"error":{"code":1,"message":"X","data":["p"]},"id":1}""")]
    [InlineData("""{"id":1}""")]
    [InlineData("""[1,2]""")]
    [InlineData("""not json""")]
    [InlineData("")]
    [InlineData("""{"result":{"OpaqueRef:a":{"s":"a \"quoted\" \u00e9 value"}},"id":1} trailing""")]
    public async Task JsonRpc_DecodeRecordsAsync_AsTheReplyArrivesInPieces_DecodesAsFromTheWhole(string body)
    {
        await DecodeAllWaysAsync(System.Text.Encoding.UTF8.GetBytes(body), []);
        // A byte order mark in front: skipped, as the buffered path strips it.
        await DecodeAllWaysAsync(System.Text.Encoding.UTF8.GetBytes(body), [0xEF, 0xBB, 0xBF]);
    }

    [Fact]
    public async Task JsonRpc_DecodeRecordsAsync_RecordsLargerThanItsWindow_AndManyOfThem()
    {
        var big = new string('x', 200_000);
        var records = string.Join(",", Enumerable.Range(0, 3000).Select(i =>
            $$$"""
            "OpaqueRef:{{{i}}}":{"uuid":"u{{{i}}}","name_label":"vm {{{i}}}","other_config":{"k":"{{{(i == 1500 ? big : "v")}}}"}}
            """));
        var body = System.Text.Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","result":{""" + records + """},"id":7}""");

        var streamed = await JsonRpc.DecodeRecordsAsync(new TrickleStream(body, 8192), "VM.get_all_records", XapiVmRecord.From);

        Assert.Equal(3000, streamed.Count);
        Assert.Equal(Enumerable.Range(0, 3000).Select(i => "u" + i), streamed.Select(v => v.Uuid));
        Assert.Equal(big, streamed[1500].OtherConfig["k"]);
        Assert.Equal(JsonRpc.DecodeRecords(body, "VM.get_all_records", (r, o) => r), streamed.Select(v => v.Ref));
    }

    [Fact]
    public void JsonRpc_TypedDecode_MapsRecordsLikeTheTreeDecoder()
    {
        const string body = """
            {"jsonrpc":"2.0","result":{"OpaqueRef:h1":{"uuid":"u1","name_label":"xen1","enabled":true,"memory_overhead":"1024",
             "other_config":{"boot_time":"1700000000.5","n":7},"pending_guidances":["reboot_host"],"current_operations":{"t":"evacuate"},
             "metrics":"","API_version_major":2}},"id":1}
            """;
        var tree = (System.Text.Json.Nodes.JsonObject)JsonRpc.DecodeResponse(body, "host.get_all_records")!["OpaqueRef:h1"]!;
        var fromTree = XapiHostRecord.From("OpaqueRef:h1", tree);
        var fromBytes = JsonRpc.DecodeResponse(System.Text.Encoding.UTF8.GetBytes(body), "host.get_all_records", r => XapiHostRecord.From("OpaqueRef:h1", r.GetProperty("OpaqueRef:h1")));
        foreach (var h in new[] { fromTree, fromBytes })
        {
            Assert.Equal(("u1", "xen1", true, 1024L, "OpaqueRef:NULL", 2L), (h.Uuid, h.NameLabel, h.Enabled, h.MemoryOverhead, h.Metrics, h.ApiVersionMajor));
            Assert.Equal("7", h.OtherConfig["n"]);
            Assert.Equal(["reboot_host"], h.PendingGuidances);
            Assert.Equal(["evacuate"], h.CurrentOperations);
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_500), h.BootTime);
        }
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{}")]
    [InlineData("")]
    public void JsonRpc_Garbage_IsProtocolError(string body)
    {
        var e = Assert.Throws<XapiException>(() => JsonRpc.DecodeResponse(body, "m"));
        Assert.Equal(XapiException.ProtocolError, e.Code);
        Assert.Equal(XapiException.ProtocolError, Assert.Throws<XapiException>(() => JsonRpc.DecodeResponse(System.Text.Encoding.UTF8.GetBytes(body), "m", r => r.GetRawText())).Code);
        Assert.Equal(XapiException.ProtocolError, Assert.Throws<XapiException>(() => JsonRpc.DecodeRecords(System.Text.Encoding.UTF8.GetBytes(body), "m", (r, _) => r)).Code);
    }

    [Fact]
    public void XmlRpc_Success_DecodesValueTree()
    {
        const string xml = """
            <?xml version="1.0"?><methodResponse><params><param><value><struct>
            <member><name>Status</name><value>Success</value></member>
            <member><name>Value</name><value><struct>
              <member><name>memory_total</name><value>274877906944</value></member>
              <member><name>live</name><value><boolean>1</boolean></value></member>
              <member><name>when</name><value><dateTime.iso8601>20240101T00:00:00Z</dateTime.iso8601></value></member>
              <member><name>refs</name><value><array><data><value>OpaqueRef:a</value><value><string>OpaqueRef:b</string></value></data></array></value></member>
            </struct></value></member></struct></value></param></params></methodResponse>
            """;
        var value = XmlRpc.DecodeResponse(xml, "host_metrics.get_record")!;
        Assert.Equal("274877906944", value["memory_total"]!.ToString());
        Assert.True(value["live"]!.GetValue<bool>());
        Assert.Equal("20240101T00:00:00Z", value["when"]!.ToString());
        Assert.Equal(2, value["refs"]!.AsArray().Count);
    }

    [Fact]
    public void XmlRpc_Failure_CarriesErrorDescription()
    {
        const string xml = """
            <?xml version="1.0"?><methodResponse><params><param><value><struct>
            <member><name>Status</name><value>Failure</value></member>
            <member><name>ErrorDescription</name><value><array><data>
              <value>VM_REQUIRES_SR</value><value>OpaqueRef:vm</value><value><string>OpaqueRef:sr</string></value>
            </data></array></value></member></struct></value></param></params></methodResponse>
            """;
        var e = Assert.Throws<XapiException>(() => XmlRpc.DecodeResponse(xml, "VM.pool_migrate"));
        Assert.Equal("VM_REQUIRES_SR", e.Code);
        Assert.Equal(["OpaqueRef:vm", "OpaqueRef:sr"], e.Parameters);
    }

    // The client's requests, pinned against XML written by hand from the XenAPI wire protocol
    // (xen-api doc/content/xen-api/wire-protocol.md: sets are <array>, maps <struct>, int64 a string of digits,
    // bool <boolean>, float <double>). Nothing decodes them with the client's own codec, so a mistake in
    // EncodeCall shows here rather than on a real host.
    public static TheoryData<string, object?[], string> Calls => new()
    {
        {
            "pool.enable_ha",
            ["OpaqueRef:session", new[] { "OpaqueRef:sr1", "OpaqueRef:sr2" }, new Dictionary<string, string> { ["timeout"] = "60" }],
            """
            <methodCall>
              <methodName>pool.enable_ha</methodName>
              <params>
                <param><value><string>OpaqueRef:session</string></value></param>
                <param><value><array><data>
                  <value><string>OpaqueRef:sr1</string></value>
                  <value><string>OpaqueRef:sr2</string></value>
                </data></array></value></param>
                <param><value><struct>
                  <member><name>timeout</name><value><string>60</string></value></member>
                </struct></value></param>
              </params>
            </methodCall>
            """
        },
        {
            "pool.set_ha_host_failures_to_tolerate",
            ["OpaqueRef:session", "OpaqueRef:pool", 2L],
            """
            <methodCall>
              <methodName>pool.set_ha_host_failures_to_tolerate</methodName>
              <params>
                <param><value><string>OpaqueRef:session</string></value></param>
                <param><value><string>OpaqueRef:pool</string></value></param>
                <param><value><string>2</string></value></param>
              </params>
            </methodCall>
            """
        },
        {
            "host.disable",
            ["OpaqueRef:session", "OpaqueRef:host", true],
            """
            <methodCall>
              <methodName>host.disable</methodName>
              <params>
                <param><value><string>OpaqueRef:session</string></value></param>
                <param><value><string>OpaqueRef:host</string></value></param>
                <param><value><boolean>1</boolean></value></param>
              </params>
            </methodCall>
            """
        },
        {
            "pool.set_ha_allow_overcommit",
            ["OpaqueRef:session", "OpaqueRef:pool", false],
            """
            <methodCall>
              <methodName>pool.set_ha_allow_overcommit</methodName>
              <params>
                <param><value><string>OpaqueRef:session</string></value></param>
                <param><value><string>OpaqueRef:pool</string></value></param>
                <param><value><boolean>0</boolean></value></param>
              </params>
            </methodCall>
            """
        },
        {
            "host.evacuate",
            ["OpaqueRef:session", "OpaqueRef:host", "OpaqueRef:network", 9_007_199_254_740_993L],
            """
            <methodCall>
              <methodName>host.evacuate</methodName>
              <params>
                <param><value><string>OpaqueRef:session</string></value></param>
                <param><value><string>OpaqueRef:host</string></value></param>
                <param><value><string>OpaqueRef:network</string></value></param>
                <param><value><string>9007199254740993</string></value></param>
              </params>
            </methodCall>
            """
        },
        {
            "event.from",
            ["OpaqueRef:session", new[] { "host", "task/OpaqueRef:t<&>" }, "", 30.5],
            """
            <methodCall>
              <methodName>event.from</methodName>
              <params>
                <param><value><string>OpaqueRef:session</string></value></param>
                <param><value><array><data>
                  <value><string>host</string></value>
                  <value><string>task/OpaqueRef:t&lt;&amp;&gt;</string></value>
                </data></array></value></param>
                <param><value><string></string></value></param>
                <param><value><double>30.5</double></value></param>
              </params>
            </methodCall>
            """
        },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public void XmlRpc_EncodeCall_IsTheLiteralXml(string method, object?[] parameters, string expected)
    {
        var actual = XDocument.Parse(XmlRpc.EncodeCall(method, parameters));

        var want = XDocument.Parse(expected);
        Assert.True(XNode.DeepEquals(want.Root, actual.Root), $"expected {want.Root}\nbut the client sent {actual.Root}");
    }

    [Fact]
    public void XmlRpc_EncodeCall_StartsWithTheXmlDeclaration() =>
        Assert.StartsWith("<?xml version=\"1.0\"?><methodCall>", XmlRpc.EncodeCall("session.logout", ["OpaqueRef:s"]), StringComparison.Ordinal);

    [Theory]
    [InlineData("<methodResponse><params><param><value><struct><member><name>Status</name><value>Weird</value></member></struct></value></param></params></methodResponse>")]
    [InlineData("<notxmlrpc/>")]
    [InlineData("<<<")]
    [InlineData("<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><methodResponse>&e;</methodResponse>")]
    public void XmlRpc_Garbage_IsXapiException(string xml) => Assert.Throws<XapiException>(() => XmlRpc.DecodeResponse(xml, "m"));

    [Fact]
    public void Wire_RandomGarbage_NeverThrowsAnythingButXapiException()
    {
        var random = new Random(1234);
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 200)];
            random.NextBytes(bytes);
            var text = i % 3 == 0 ? "{\"error\":" + System.Text.Encoding.UTF8.GetString(bytes) : System.Text.Encoding.Latin1.GetString(bytes);
            try
            {
                JsonRpc.DecodeResponse(text, "m");
            }
            catch (XapiException)
            {
            }

            try
            {
                XmlRpc.DecodeResponse("<methodResponse>" + text, "m");
            }
            catch (XapiException)
            {
            }
        }
    }
}
