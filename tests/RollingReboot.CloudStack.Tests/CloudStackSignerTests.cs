using RollingReboot.Lab.CloudStack;

namespace RollingReboot.CloudStack.Tests;

public class CloudStackSignerTests
{
    internal const string GuideApiKey = "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg";
    internal const string GuideSecretKey = "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ";

    private static readonly KeyValuePair<string, string>[] s_guideParameters =
        [new("command", "listUsers"), new("response", "json")];

    [Fact]
    public void BuildStringToSign_DeveloperGuideVector_IsTheDocumentedString()
    {
        var stringToSign = CloudStackSigner.BuildStringToSign([.. s_guideParameters, new("apiKey", GuideApiKey)]);

        Assert.Equal(
            "apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg&command=listusers&response=json",
            stringToSign);
        Assert.Equal("TTpdDq/7j/J58XCRHomKoQXEQds=", CloudStackSigner.ComputeSignature(stringToSign, GuideSecretKey));
    }

    [Fact]
    public void Sign_DeveloperGuideVector_SendsTheDocumentedSignatureEncoded()
    {
        var query = new CloudStackSigner(GuideApiKey, GuideSecretKey).Sign(s_guideParameters);

        Assert.Equal($"apikey={GuideApiKey}&command=listUsers&response=json&signature=TTpdDq%2F7j%2FJ58XCRHomKoQXEQds%3D", query);
    }

    [Theory]
    [InlineData("a b", "a%20b")]
    [InlineData("*", "*")]
    [InlineData("~", "%7E")]
    [InlineData("+", "%2B")]
    [InlineData("a=b&c", "a%3Db%26c")]
    [InlineData("._-AZaz09", "._-AZaz09")]
    [InlineData("é", "%C3%A9")]
    [InlineData("日本", "%E6%97%A5%E6%9C%AC")]
    [InlineData("😀", "%F0%9F%98%80")]
    [InlineData("/?#%'!()", "%2F%3F%23%25%27%21%28%29")]
    public void EncodeValue_JavaUrlEncoderSemantics(string value, string expected) =>
        Assert.Equal(expected, CloudStackSigner.EncodeValue(value));

    [Fact]
    public void EncodeValue_UnpairedSurrogate_EncodesAsQuestionMarkLikeJava() =>
        Assert.Equal("a%3Fb", CloudStackSigner.EncodeValue("a\uD800b"));

    [Theory]
    [InlineData("CLUSTER 1")]
    [InlineData("a*b~c+d")]
    [InlineData("x=y&z=w")]
    [InlineData("Zürich – 東京 😀")]
    [InlineData("")]
    public void Sign_AwkwardValues_VerifyWithTheLabsIndependentVerifier(string value)
    {
        var query = new CloudStackSigner("key", "secret").Sign([new("command", "listClusters"), new("name", value), new("response", "json")]);
        var decoded = ScriptedHandler.Parameters(query);

        Assert.Equal(value, decoded["name"]);
        Assert.True(LabSignatureVerifier.Verify(decoded, "secret"));
        Assert.False(LabSignatureVerifier.Verify(decoded, "other secret"));
    }

    [Fact]
    public void Sign_UppercaseNames_AreLowercasedSoTheServersSortMatches()
    {
        // Sent as "Name" and "apikey", the server would sort "Name" first (uppercase sorts first) and
        // the signature would not match: the signer must send lowercase names.
        var query = new CloudStackSigner("key", "secret").Sign([new("command", "listClusters"), new("Name", "a")]);

        Assert.Contains("&name=a&", query, StringComparison.Ordinal);
        Assert.True(LabSignatureVerifier.Verify(ScriptedHandler.Parameters(query), "secret"));
    }

    [Fact]
    public void Sign_DuplicateNameInAnotherCase_IsRefused() =>
        Assert.Throws<ArgumentException>(() => new CloudStackSigner("key", "secret").Sign([new("name", "a"), new("NAME", "b")]));

    [Fact]
    public void Sign_SignatureVersion3_SignsVersionAndLegacyExpires()
    {
        var expires = new DateTimeOffset(2026, 11, 22, 12, 10, 0, TimeSpan.Zero);

        var query = new CloudStackSigner("key", "secret").Sign([new("command", "listClusters")], expires);
        var decoded = ScriptedHandler.Parameters(query);

        Assert.Equal("3", decoded["signatureversion"]);
        Assert.Equal("2026-11-22T12:10:00Z+0000", decoded["expires"]);
        Assert.Contains("expires=2026-11-22T12%3A10%3A00Z%2B0000", query, StringComparison.Ordinal);
        Assert.Contains("expires=2026-11-22t12%3a10%3a00z%2b0000&signatureversion=3", LabSignatureVerifier.UnsignedRequest(decoded), StringComparison.Ordinal);
        Assert.True(LabSignatureVerifier.Verify(decoded, "secret"));
    }

    [Fact]
    public void FormatExpires_NonUtcOffset_IsWrittenInUtc() =>
        Assert.Equal("2026-11-22T10:00:00Z+0000", CloudStackSigner.FormatExpires(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.FromHours(2))));

    [Theory]
    [InlineData("2026-11-22T12:00:00Z+0000")]
    [InlineData("2026-11-22T12:00:00+0000")]
    [InlineData("2026-11-22T12:00:00Z")]
    [InlineData("2026-11-22T12:00:00+00:00")]
    [InlineData("2026-11-22T14:00:00+0200")]
    public void LabParseExpires_FormatsCloudStackAccepts(string text)
    {
        Assert.True(LabSignatureVerifier.TryParseExpires(text, out var expires));
        Assert.Equal(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero), expires);
    }

    [Theory]
    [InlineData("")]
    [InlineData("tomorrow")]
    [InlineData("2026-11-22 12:00:00")]
    public void LabParseExpires_Garbage_IsRefused(string text) =>
        Assert.False(LabSignatureVerifier.TryParseExpires(text, out _));

    [Fact]
    public void Signer_ToString_HidesTheSecret() =>
        Assert.DoesNotContain(GuideSecretKey, new CloudStackSigner(GuideApiKey, GuideSecretKey).ToString(), StringComparison.Ordinal);
}
