using System.Text.Json.Nodes;
using System.Xml.Linq;
using RollingReboot.Lab.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// The lab's own XML-RPC server half against XML written by hand from xapi's wire (ocaml-rpc xmlrpc.ml as xapi
/// uses it; xen-api doc/content/xen-api/wire-protocol.md): no part of the client's codec is involved.
/// </summary>
public sealed class XmlRpcServerTests
{
    [Fact]
    public void DecodeCall_EveryTypeXapiReads()
    {
        const string body = """
            <?xml version="1.0"?>
            <methodCall>
              <methodName>test.types</methodName>
              <params>
                <param><value>bare text</value></param>
                <param><value><string>typed text</string></value></param>
                <param><value>  spaced  </value></param>
                <param><value/></param>
                <param><value><string/></value></param>
                <param><value><int>7</int></value></param>
                <param><value><i4>-8</i4></value></param>
                <param><value><i8>9007199254740993</i8></value></param>
                <param><value><boolean>1</boolean></value></param>
                <param><value><boolean>0</boolean></value></param>
                <param><value><double>30.5</double></value></param>
                <param><value><dateTime.iso8601>20260101T12:00:00Z</dateTime.iso8601></value></param>
                <param><value><nil/></value></param>
                <param><value><base64>aGVsbG8=</base64></value></param>
                <param>
                  <value>
                    <array>
                      <data>
                        <value>OpaqueRef:a</value>
                        <value><string>OpaqueRef:b</string></value>
                        <value><array><data/></array></value>
                        <value><array/></value>
                      </data>
                    </array>
                  </value>
                </param>
                <param>
                  <value>
                    <struct>
                      <member><name>timeout</name><value><string>60</string></value></member>
                      <member>
                        <name>nested</name>
                        <value><struct><member><name>deep</name><value><i4>1</i4></value></member></struct></value>
                      </member>
                      <member><name>amp &amp; lt &lt;</name><value>a &amp; b</value></member>
                      <member><name>empty</name><value><struct/></value></member>
                    </struct>
                  </value>
                </param>
              </params>
            </methodCall>
            """;

        var (method, ps) = XmlRpcServer.DecodeCall(body);

        Assert.Equal("test.types", method);
        Assert.Equal(16, ps.Count);
        Assert.Equal("bare text", ps[0]!.GetValue<string>());
        Assert.Equal("typed text", ps[1]!.GetValue<string>());
        Assert.Equal("  spaced  ", ps[2]!.GetValue<string>());
        Assert.Equal("", ps[3]!.GetValue<string>());
        Assert.Equal("", ps[4]!.GetValue<string>());
        Assert.Equal(7L, ps[5]!.GetValue<long>());
        Assert.Equal(-8L, ps[6]!.GetValue<long>());
        Assert.Equal(9_007_199_254_740_993L, ps[7]!.GetValue<long>());
        Assert.True(ps[8]!.GetValue<bool>());
        Assert.False(ps[9]!.GetValue<bool>());
        Assert.Equal(30.5, ps[10]!.GetValue<double>());
        Assert.Equal("20260101T12:00:00Z", ps[11]!.GetValue<string>());
        Assert.Null(ps[12]);
        Assert.Equal("hello", ps[13]!.GetValue<string>());
        var array = ps[14]!.AsArray();
        Assert.Equal(4, array.Count);
        Assert.Equal(["OpaqueRef:a", "OpaqueRef:b"], array.Take(2).Select(a => a!.GetValue<string>()));
        Assert.Empty(array[2]!.AsArray());
        Assert.Empty(array[3]!.AsArray());
        var map = ps[15]!.AsObject();
        Assert.Equal(["timeout", "nested", "amp & lt <", "empty"], map.Select(kv => kv.Key));
        Assert.Equal("60", map["timeout"]!.GetValue<string>());
        Assert.Equal(1L, map["nested"]!["deep"]!.GetValue<long>());
        Assert.Equal("a & b", map["amp & lt <"]!.GetValue<string>());
        Assert.Empty(map["empty"]!.AsObject());
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("0", false)]
    [InlineData("true", false)] // ocaml-rpc's make_bool: only "1" is true
    public void DecodeCall_Boolean_OnlyOneIsTrue(string text, bool expected)
    {
        var (_, ps) = XmlRpcServer.DecodeCall($"<methodCall><methodName>m</methodName><params><param><value><boolean>{text}</boolean></value></param></params></methodCall>");
        Assert.Equal(expected, ps[0]!.GetValue<bool>());
    }

    [Fact]
    public void DecodeCall_NamesAreNotTrimmed_AndTheFirstOfTwoEqualMembersWins()
    {
        var (method, ps) = XmlRpcServer.DecodeCall("""
            <methodCall><methodName> host.get_all</methodName><params><param><value><struct>
              <member><name>k</name><value>first</value></member>
              <member><name>k</name><value>second</value></member>
              <member><name> k </name><value>spaced</value></member>
            </struct></value></param></params></methodCall>
            """);

        Assert.Equal(" host.get_all", method);
        Assert.Equal("first", ps[0]!["k"]!.GetValue<string>());
        Assert.Equal("spaced", ps[0]![" k "]!.GetValue<string>());
    }

    [Theory]
    [InlineData("<methodCall><methodName>m</methodName></methodCall>")] // params is required
    [InlineData("<methodCall><params/></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params/><extra/></methodCall>")]
    [InlineData("<methodResponse><params/></methodResponse>")]
    [InlineData("<methodCall><methodName>m</methodName><params><value>x</value></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param/></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value>a</value><value>b</value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value>text<string>x</string></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><string>a</string><string>b</string></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><int></int></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><int>two</int></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><i4> 2</i4></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><i8>9223372036854775808</i8></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><boolean/></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><double>fast</double></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><float>1</float></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><nil>x</nil></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><base64>!!</base64></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><array><value>x</value></array></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><array> </array></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><struct><member><value>x</value></member></struct></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><struct><member><name>k</name></member></struct></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName>m</methodName><params><param><value><struct><value>x</value></struct></value></param></params></methodCall>")]
    [InlineData("<methodCall><methodName><b>m</b></methodName><params/></methodCall>")]
    [InlineData("<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><methodCall><methodName>&e;</methodName><params/></methodCall>")]
    [InlineData("<methodCall><methodName>m")]
    [InlineData("")]
    public void DecodeCall_WhatXapisParserRejects_IsMalformed(string body) =>
        Assert.Throws<MalformedXmlRpcException>(() => XmlRpcServer.DecodeCall(body));

    [Fact]
    public void Success_EncodesXapisTypes()
    {
        var value = new JsonObject
        {
            ["name_label"] = "m & <n>",
            ["memory_total"] = 68_719_476_736L,
            ["count"] = 2,
            ["live"] = true,
            ["enabled"] = false,
            ["progress"] = 0.25,
            ["whole"] = 2.0,
            ["third"] = 1.0 / 3,
            ["big"] = 1e16,
            ["last_updated"] = "20260101T00:00:00Z",
            ["not_a_date"] = "20261301T00:00:00Z",
            ["nothing"] = null,
            ["void"] = "",
            ["control"] = "a\u0001b\tc",
            ["refs"] = new JsonArray("OpaqueRef:a", "OpaqueRef:b"),
            ["none"] = new JsonArray(),
            ["other_config"] = new JsonObject { ["k"] = "v" },
        };

        var actual = XDocument.Parse(XmlRpcServer.Success(value));

        var expected = XDocument.Parse("""
            <methodResponse><params><param><value><struct>
              <member><name>Status</name><value>Success</value></member>
              <member><name>Value</name><value><struct>
                <member><name>name_label</name><value>m &amp; &lt;n&gt;</value></member>
                <member><name>memory_total</name><value>68719476736</value></member>
                <member><name>count</name><value><i4>2</i4></value></member>
                <member><name>live</name><value><boolean>1</boolean></value></member>
                <member><name>enabled</name><value><boolean>0</boolean></value></member>
                <member><name>progress</name><value><double>0.25</double></value></member>
                <member><name>whole</name><value><double>2</double></value></member>
                <member><name>third</name><value><double>0.3333333333333333</double></value></member>
                <member><name>big</name><value><double>1e+16</double></value></member>
                <member><name>last_updated</name><value><dateTime.iso8601>20260101T00:00:00Z</dateTime.iso8601></value></member>
                <member><name>not_a_date</name><value>20261301T00:00:00Z</value></member>
                <member><name>nothing</name><value><nil/></value></member>
                <member><name>void</name><value></value></member>
                <member><name>control</name><value>ab&#9;c</value></member>
                <member><name>refs</name><value><array><data><value>OpaqueRef:a</value><value>OpaqueRef:b</value></data></array></value></member>
                <member><name>none</name><value><array><data></data></array></value></member>
                <member><name>other_config</name><value><struct><member><name>k</name><value>v</value></member></struct></value></member>
              </struct></value></member>
            </struct></value></param></params></methodResponse>
            """);
        AssertSameXml(expected, actual);
    }

    [Fact]
    public void Success_ValuesParsedFromJson_KeepTheirKinds()
    {
        // Values that reach the sim from a JSON-RPC request are JSON elements, not CLR primitives.
        var value = JsonNode.Parse("""{"n":5,"f":1.5,"b":true,"s":"x","z":null}""");

        var actual = XDocument.Parse(XmlRpcServer.Success(value));

        AssertSameXml(XDocument.Parse("""
            <methodResponse><params><param><value><struct>
              <member><name>Status</name><value>Success</value></member>
              <member><name>Value</name><value><struct>
                <member><name>n</name><value>5</value></member>
                <member><name>f</name><value><double>1.5</double></value></member>
                <member><name>b</name><value><boolean>1</boolean></value></member>
                <member><name>s</name><value>x</value></member>
                <member><name>z</name><value><nil/></value></member>
              </struct></value></member>
            </struct></value></param></params></methodResponse>
            """), actual);
    }

    [Fact]
    public void Failure_IsStatusFailureWithErrorDescriptionStrings()
    {
        var text = XmlRpcServer.Failure("MAP_DUPLICATE_KEY", ["pool", "other_config", "OpaqueRef:p", "rollreboot-lock"]);

        Assert.StartsWith("<?xml version=\"1.0\"?><methodResponse>", text, StringComparison.Ordinal);
        AssertSameXml(XDocument.Parse("""
            <methodResponse><params><param><value><struct>
              <member><name>Status</name><value>Failure</value></member>
              <member><name>ErrorDescription</name><value><array><data>
                <value>MAP_DUPLICATE_KEY</value><value>pool</value><value>other_config</value><value>OpaqueRef:p</value><value>rollreboot-lock</value>
              </data></array></value></member>
            </struct></value></param></params></methodResponse>
            """), XDocument.Parse(text));
    }

    [Fact]
    public void Bare_IsTheValueAloneInTheParam()
    {
        var text = XmlRpcServer.Bare(new JsonArray("VM.get_all", "host.get_all"));

        AssertSameXml(
            XDocument.Parse("<methodResponse><params><param><value><array><data><value>VM.get_all</value><value>host.get_all</value></data></array></value></param></params></methodResponse>"),
            XDocument.Parse(text));
    }

    private static void AssertSameXml(XDocument expected, XDocument actual) => Assert.Equal(Canonical(expected.Root!), Canonical(actual.Root!));

    /// <summary>Element names and text, whitespace between elements ignored, and <c>&lt;a/&gt;</c> the same as <c>&lt;a&gt;&lt;/a&gt;</c>.</summary>
    internal static string Canonical(XElement e) =>
        e.HasElements
            ? e.Name.LocalName + "(" + string.Join(",", e.Elements().Select(Canonical)) + ")"
            : e.Name.LocalName + "'" + e.Value + "'";
}
