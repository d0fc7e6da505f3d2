"""Names and places for the demo data: Chinese and English companies and people, China's sales regions.

Every vocabulary here is a tuple (never a set), so that drawing from it with a seeded
``random.Random`` gives the same sequence on every run and every Python version.
Chinese words carry their pinyin so e-mail addresses and websites can be spelled without a
dictionary look-up.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from functools import lru_cache

from closeloop.core import phones


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _phrases(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``"协和 xiehe 康泰 kangtai"`` → ``(("协和", "xiehe"), ("康泰", "kangtai"))``."""
    words = text.split()
    return tuple(zip(words[::2], words[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class City:
    name: str
    pinyin: str
    area_code: str
    districts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Province:
    name: str
    cities: tuple[City, ...]


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """A sales region (大区) and the share of the customer base it holds."""

    name: str
    code: str
    weight: float
    provinces: tuple[Province, ...]


def _city(name: str, pinyin: str, area_code: str, *districts: str) -> City:
    return City(name, pinyin, area_code, districts)


REGIONS: tuple[RegionSpec, ...] = (
    RegionSpec(
        "华东",
        "east",
        0.30,
        (
            Province("上海市", (_city("上海", "Shanghai", "021", "浦东新区", "徐汇区", "闵行区", "静安区", "杨浦区"),)),
            Province(
                "江苏省",
                (
                    _city("南京", "Nanjing", "025", "鼓楼区", "江宁区", "建邺区"),
                    _city("苏州", "Suzhou", "0512", "工业园区", "姑苏区", "吴中区"),
                    _city("无锡", "Wuxi", "0510", "滨湖区", "新吴区"),
                    _city("常州", "Changzhou", "0519", "武进区", "天宁区"),
                ),
            ),
            Province(
                "浙江省",
                (
                    _city("杭州", "Hangzhou", "0571", "西湖区", "滨江区", "余杭区"),
                    _city("宁波", "Ningbo", "0574", "鄞州区", "海曙区"),
                    _city("温州", "Wenzhou", "0577", "鹿城区", "瓯海区"),
                ),
            ),
            Province("安徽省", (_city("合肥", "Hefei", "0551", "蜀山区", "包河区", "高新区"),)),
            Province(
                "山东省",
                (
                    _city("济南", "Jinan", "0531", "历下区", "槐荫区"),
                    _city("青岛", "Qingdao", "0532", "市南区", "崂山区", "黄岛区"),
                    _city("烟台", "Yantai", "0535", "芝罘区", "莱山区"),
                ),
            ),
            Province(
                "福建省",
                (
                    _city("福州", "Fuzhou", "0591", "鼓楼区", "仓山区"),
                    _city("厦门", "Xiamen", "0592", "思明区", "湖里区"),
                ),
            ),
            Province("江西省", (_city("南昌", "Nanchang", "0791", "东湖区", "红谷滩区"),)),
        ),
    ),
    RegionSpec(
        "华南",
        "south",
        0.18,
        (
            Province(
                "广东省",
                (
                    _city("广州", "Guangzhou", "020", "天河区", "越秀区", "海珠区", "番禺区"),
                    _city("深圳", "Shenzhen", "0755", "南山区", "福田区", "宝安区", "龙岗区"),
                    _city("佛山", "Foshan", "0757", "禅城区", "南海区", "顺德区"),
                    _city("东莞", "Dongguan", "0769", "松山湖", "南城街道"),
                    _city("珠海", "Zhuhai", "0756", "香洲区", "横琴新区"),
                ),
            ),
            Province(
                "广西壮族自治区",
                (_city("南宁", "Nanning", "0771", "青秀区", "西乡塘区"), _city("桂林", "Guilin", "0773", "七星区")),
            ),
            Province("海南省", (_city("海口", "Haikou", "0898", "龙华区", "美兰区"),)),
        ),
    ),
    RegionSpec(
        "华北",
        "north",
        0.17,
        (
            Province("北京市", (_city("北京", "Beijing", "010", "海淀区", "朝阳区", "东城区", "西城区", "丰台区"),)),
            Province("天津市", (_city("天津", "Tianjin", "022", "和平区", "南开区", "滨海新区"),)),
            Province(
                "河北省",
                (
                    _city("石家庄", "Shijiazhuang", "0311", "长安区", "裕华区"),
                    _city("唐山", "Tangshan", "0315", "路北区"),
                ),
            ),
            Province("山西省", (_city("太原", "Taiyuan", "0351", "小店区", "迎泽区"),)),
            Province("内蒙古自治区", (_city("呼和浩特", "Hohhot", "0471", "新城区", "赛罕区"),)),
        ),
    ),
    RegionSpec(
        "华中",
        "central",
        0.12,
        (
            Province(
                "湖北省",
                (
                    _city("武汉", "Wuhan", "027", "武昌区", "江汉区", "洪山区"),
                    _city("宜昌", "Yichang", "0717", "西陵区"),
                ),
            ),
            Province(
                "湖南省",
                (
                    _city("长沙", "Changsha", "0731", "岳麓区", "芙蓉区", "雨花区"),
                    _city("株洲", "Zhuzhou", "0731", "天元区"),
                ),
            ),
            Province(
                "河南省",
                (
                    _city("郑州", "Zhengzhou", "0371", "金水区", "二七区", "郑东新区"),
                    _city("洛阳", "Luoyang", "0379", "涧西区"),
                ),
            ),
        ),
    ),
    RegionSpec(
        "西南",
        "southwest",
        0.10,
        (
            Province(
                "四川省",
                (
                    _city("成都", "Chengdu", "028", "武侯区", "锦江区", "高新区"),
                    _city("绵阳", "Mianyang", "0816", "涪城区"),
                ),
            ),
            Province("重庆市", (_city("重庆", "Chongqing", "023", "渝中区", "江北区", "渝北区"),)),
            Province("云南省", (_city("昆明", "Kunming", "0871", "五华区", "盘龙区"),)),
            Province("贵州省", (_city("贵阳", "Guiyang", "0851", "南明区", "观山湖区"),)),
        ),
    ),
    RegionSpec(
        "西北",
        "northwest",
        0.06,
        (
            Province("陕西省", (_city("西安", "Xi'an", "029", "雁塔区", "碑林区", "未央区"),)),
            Province("甘肃省", (_city("兰州", "Lanzhou", "0931", "城关区", "七里河区"),)),
            Province("新疆维吾尔自治区", (_city("乌鲁木齐", "Urumqi", "0991", "天山区", "沙依巴克区"),)),
            Province("宁夏回族自治区", (_city("银川", "Yinchuan", "0951", "金凤区", "兴庆区"),)),
            Province("青海省", (_city("西宁", "Xining", "0971", "城西区", "城东区"),)),
        ),
    ),
    RegionSpec(
        "东北",
        "northeast",
        0.07,
        (
            Province(
                "辽宁省",
                (
                    _city("沈阳", "Shenyang", "024", "和平区", "沈河区", "浑南区"),
                    _city("大连", "Dalian", "0411", "中山区", "甘井子区"),
                ),
            ),
            Province("吉林省", (_city("长春", "Changchun", "0431", "朝阳区", "南关区"),)),
            Province("黑龙江省", (_city("哈尔滨", "Harbin", "0451", "南岗区", "道里区", "香坊区"),)),
        ),
    ),
)

#: Industries the demo seller sells into, with their share and a typical head-count range.
INDUSTRIES: tuple[tuple[str, float, int, int], ...] = (
    ("医院", 0.34, 300, 9000),
    ("医疗器械", 0.15, 40, 6000),
    ("分销", 0.14, 30, 3000),
    ("零售药店", 0.12, 20, 20000),
    ("制造", 0.11, 100, 15000),
    ("第三方检验", 0.07, 50, 4000),
    ("SaaS", 0.07, 15, 2500),
)

INDUSTRY_EN = {
    "医院": "Hospital",
    "医疗器械": "Medical devices",
    "分销": "Distribution",
    "零售药店": "Pharmacy retail",
    "制造": "Manufacturing",
    "第三方检验": "Clinical laboratory",
    "SaaS": "SaaS",
}

#: 字号: the distinctive middle of a Chinese company name, with pinyin for domains.
TRADE_NAMES: tuple[tuple[str, str], ...] = _pairs(
    "协和 xiehe 康泰 kangtai 华信 huaxin 瑞康 ruikang 博远 boyuan 安泰 antai 康达 kangda 华美 huamei "
    "联众 lianzhong 汇通 huitong 启明 qiming 天成 tiancheng 鼎盛 dingsheng 永安 yongan 百川 baichuan "
    "新华 xinhua 东方 dongfang 金桥 jinqiao 万邦 wanbang 恒通 hengtong 德信 dexin 嘉和 jiahe "
    "益康 yikang 佳禾 jiahe 明德 mingde 昌盛 changsheng 远航 yuanhang 卓越 zhuoyue 华康 huakang "
    "海纳 haina 信达 xinda 宏图 hongtu 天润 tianrun 博雅 boya 瑞丰 ruifeng 盛世 shengshi 中科 zhongke "
    "润泽 runze 鸿运 hongyun 瀚海 hanhai 睿智 ruizhi 凯瑞 kairui 普惠 puhui 和美 hemei 康宁 kangning "
    "安康 ankang 泰和 taihe 万和 wanhe 宝元 baoyuan 蓝天 lantian 星辰 xingchen 锦程 jincheng "
    "云帆 yunfan 智远 zhiyuan 华辰 huachen 九州 jiuzhou 长风 changfeng 仁和 renhe 同心 tongxin "
    "济民 jimin 惠民 huimin 恒康 hengkang 迈德 maide 迪安 dian 科华 kehua 英科 yingke 联影 lianying "
    "贝瑞 beirui 华大 huada 金域 jinyu 国药 guoyao 百洋 baiyang 一心 yixin 老百姓 laobaixing "
    "益丰 yifeng 大参林 dashenlin 海王 haiwang 健之佳 jianzhijia 漱玉 shuyu 鹭燕 luyan"
)

TRADE_NAMES_EN: tuple[str, ...] = _words(
    "Pacific Northstar Evergreen Summit Harmony Bluebay Orient Meridian Silverline Crestview Lumina "
    "Vertex Novacare Brightpath Kingsway Redwood Sterling Aurora Clearwater Highland Oakridge Pioneer "
    "Sinoswiss Trinity Unity Westlake Zenith Atlas Beacon Cascade Everbright Granite Horizon Ironwood "
    "Juniper Keystone"
)

_COMPANY_PATTERNS: dict[str, tuple[str, ...]] = {
    "医院": (
        "{city}{trade}医院",
        "{city}市第{ordinal}人民医院",
        "{city}{trade}中医医院",
        "{city}{trade}妇幼保健院",
        "{city}{trade}口腔医院",
        "{city}{trade}肿瘤医院",
        "{city}{trade}骨科医院",
    ),
    "医疗器械": (
        "{city}{trade}医疗器械有限公司",
        "{city}{trade}生物医疗科技股份有限公司",
        "{city}{trade}医疗设备有限公司",
        "{trade}医疗科技（{city}）有限公司",
    ),
    "分销": ("{city}{trade}医药商业有限公司", "{city}{trade}供应链管理有限公司", "{trade}医药（{city}）有限公司"),
    "零售药店": ("{city}{trade}大药房连锁有限公司", "{trade}大药房（{city}）有限公司", "{city}{trade}医药连锁有限公司"),
    "制造": ("{city}{trade}精密制造有限公司", "{city}{trade}机械股份有限公司", "{city}{trade}电子科技有限公司"),
    "第三方检验": ("{city}{trade}医学检验实验室有限公司", "{trade}医学检验所（{city}）有限公司"),
    "SaaS": ("{city}{trade}信息科技有限公司", "{city}{trade}软件股份有限公司", "{city}{trade}云计算有限公司"),
}

_COMPANY_PATTERNS_EN: dict[str, tuple[str, ...]] = {
    "医院": (
        "{trade} International Hospital {city}",
        "{trade} United Family Clinic {city}",
        "{city} {trade} Medical Center",
    ),
    "医疗器械": (
        "{trade} Medical Devices Co., Ltd.",
        "{trade} Biomedical ({city}) Co., Ltd.",
        "{trade} Healthcare Technologies",
    ),
    "分销": ("{trade} Healthcare Distribution Co., Ltd.", "{trade} Supply Chain ({city}) Ltd."),
    "零售药店": ("{trade} Pharmacy Chain Co., Ltd.", "{trade} Drugstores ({city})"),
    "制造": (
        "{trade} Precision Manufacturing Inc.",
        "{trade} Industrial ({city}) Co., Ltd.",
        "{trade} Electronics Ltd.",
    ),
    "第三方检验": ("{trade} Diagnostics Laboratory ({city})", "{trade} Clinical Labs Co., Ltd."),
    "SaaS": ("{trade} Cloud Software Ltd.", "{trade} Data Systems ({city}) Co., Ltd.", "{trade} Digital Health Inc."),
}

_ORDINALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")

SURNAMES: tuple[tuple[str, str], ...] = _pairs(
    "王 wang 李 li 张 zhang 刘 liu 陈 chen 杨 yang 黄 huang 赵 zhao 吴 wu 周 zhou 徐 xu 孙 sun 马 ma "
    "朱 zhu 胡 hu 郭 guo 何 he 高 gao 林 lin 罗 luo 郑 zheng 梁 liang 谢 xie 宋 song 唐 tang 许 xu "
    "韩 han 冯 feng 邓 deng 曹 cao 彭 peng 曾 zeng 肖 xiao 田 tian 董 dong 袁 yuan 潘 pan 于 yu "
    "蒋 jiang 蔡 cai 余 yu 杜 du 叶 ye 程 cheng 苏 su 魏 wei 吕 lv 丁 ding 任 ren 欧阳 ouyang "
    "司马 sima"
)

GIVEN_NAME_CHARACTERS: tuple[tuple[str, str], ...] = _pairs(
    "伟 wei 芳 fang 娜 na 敏 min 静 jing 丽 li 强 qiang 磊 lei 军 jun 洋 yang 勇 yong 艳 yan 杰 jie "
    "娟 juan 涛 tao 明 ming 超 chao 秀 xiu 霞 xia 平 ping 刚 gang 桂 gui 英 ying 华 hua 建 jian "
    "国 guo 文 wen 辉 hui 鹏 peng 宇 yu 浩 hao 婷 ting 雪 xue 琳 lin 晨 chen 欣 xin 怡 yi 佳 jia "
    "思 si 子 zi 梓 zi 涵 han 博 bo 睿 rui 泽 ze 嘉 jia 晓 xiao 红 hong 海 hai 波 bo 斌 bin 峰 feng "
    "志 zhi 宏 hong 俊 jun 慧 hui 颖 ying 倩 qian 玉 yu 兰 lan 凯 kai 昊 hao 然 ran 萍 ping 立 li "
    "新 xin 春 chun 东 dong 晶 jing 蕾 lei"
)

FIRST_NAMES_EN: tuple[str, ...] = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Susan Richard "
    "Jessica Thomas Sarah Daniel Karen Matthew Emily Andrew Olivia Kevin Sophie Brian Grace Peter "
    "Hannah Mark Chloe Lukas Anna Henrik Laura Marco Elena Kenji Yuki Arjun Priya"
)

LAST_NAMES_EN: tuple[str, ...] = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin "
    "Jackson Thompson White Harris Clark Lewis Walker Young Allen King Wright Scott Green Baker Adams "
    "Nelson Hill Schmidt Müller Fischer Rossi Bianchi Tanaka Sato Sharma Patel Dubois"
)

_STREETS: tuple[str, ...] = _words(
    "人民路 中山路 解放路 建设路 长江路 黄河路 科技园路 学府路 滨江大道 世纪大道 高新大道 创新路 "
    "健康路 光明路 和平路 新华路 环城东路 工业大道"
)
_STREETS_EN: tuple[str, ...] = _phrases(
    "Century Avenue|Zhongshan Road|Renmin Road|Science Park Road|Riverside Boulevard|Hi-Tech Avenue|"
    "Innovation Road|Jianshe Road|Huanghe Road|Xueyuan Road"
)


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email_local: str
    is_chinese: bool


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    is_chinese: bool


class Namer:
    """Draws names from the vocabularies with one seeded generator; company names never repeat."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._companies: set[str] = set()

    def person(self, *, chinese: bool = True) -> Person:
        rng = self.rng
        if not chinese:
            first, last = rng.choice(FIRST_NAMES_EN), rng.choice(LAST_NAMES_EN)
            local = f"{first}.{last}".lower().replace("ü", "ue")
            return Person(f"{first} {last}", local, False)
        surname, surname_pinyin = rng.choice(SURNAMES)
        given = [rng.choice(GIVEN_NAME_CHARACTERS) for _ in range(1 if rng.random() < 0.35 else 2)]
        name = surname + "".join(character for character, _ in given)
        local = "".join(pinyin for _, pinyin in given) + "." + surname_pinyin
        return Person(name, local, True)

    def company(self, industry: str, city: City, *, chinese: bool = True, unique: bool = True) -> Company:
        """A company name for ``industry`` in ``city``; with ``unique``, one never handed out before."""
        for attempt in range(50):
            company = self._draw_company(industry, city, chinese=chinese, attempt=attempt)
            if not unique or company.name not in self._companies:
                self._companies.add(company.name)
                return company
        raise RuntimeError(f"ran out of {industry} company names for {city.name}")

    def _draw_company(self, industry: str, city: City, *, chinese: bool, attempt: int) -> Company:
        rng = self.rng
        if chinese:
            trade, trade_pinyin = rng.choice(TRADE_NAMES)
            pattern = rng.choice(_COMPANY_PATTERNS[industry])
            name = pattern.format(city=city.name, trade=trade, ordinal=rng.choice(_ORDINALS))
            if attempt >= 20:
                name = (
                    f"{name[:-4]}{rng.choice(_ORDINALS)}分公司"
                    if name.endswith("有限公司")
                    else f"{name}（{rng.choice(_ORDINALS)}院区）"
                )
            suffix = rng.choice(("", "med", "health", "group", "tech"))
            return Company(name, f"{trade_pinyin}{suffix}.com.cn", True)
        trade = rng.choice(TRADE_NAMES_EN)
        name = rng.choice(_COMPANY_PATTERNS_EN[industry]).format(trade=trade, city=city.pinyin)
        if attempt >= 20:
            name = f"{name} ({rng.choice(('East', 'West', 'North', 'South', 'Central'))} Branch)"
        return Company(name, f"{trade.lower()}-{INDUSTRY_EN[industry].split()[0].lower()}.com", False)

    def address(self, province: Province, city: City, *, chinese: bool = True) -> str:
        rng = self.rng
        district = rng.choice(city.districts)
        number = rng.randint(1, 999)
        if chinese:
            prefix = province.name if province.name.endswith("市") else f"{province.name}{city.name}市"
            return f"{prefix}{district}{rng.choice(_STREETS)}{number}号"
        return f"{number} {rng.choice(_STREETS_EN)}, {city.pinyin}, China"

    def landline(self, city: City) -> str:
        number = f"{city.area_code}-{self.rng.randint(5000_0000, 8999_9999)}"
        return number if _eight_digit_area(city.area_code) else number[:-1]

    def mobile(self) -> str:
        rng = self.rng
        return f"1{rng.choice('35789')}{rng.randint(0, 9)}{rng.randint(0, 9999_9999):08d}"

    def wechat(self, person: Person) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return f"{person.email_local.replace('.', '_')}{rng.randint(1, 99)}"
        return "wxid_" + "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(12))


#: approximate WGS-84 coordinates (latitude, longitude) of each city's centre, for the customer map
CITY_COORDINATES: dict[str, tuple[float, float]] = {
    "上海": (31.2304, 121.4737),
    "南京": (32.0603, 118.7969),
    "苏州": (31.2989, 120.5853),
    "无锡": (31.4912, 120.3119),
    "常州": (31.8107, 119.9741),
    "杭州": (30.2741, 120.1551),
    "宁波": (29.8683, 121.544),
    "温州": (27.9943, 120.6994),
    "合肥": (31.8206, 117.2272),
    "济南": (36.6512, 117.1201),
    "青岛": (36.0671, 120.3826),
    "烟台": (37.4638, 121.4479),
    "福州": (26.0745, 119.2965),
    "厦门": (24.4798, 118.0894),
    "南昌": (28.682, 115.8579),
    "广州": (23.1291, 113.2644),
    "深圳": (22.5431, 114.0579),
    "佛山": (23.0215, 113.1214),
    "东莞": (23.0205, 113.7518),
    "珠海": (22.271, 113.5767),
    "南宁": (22.817, 108.3665),
    "桂林": (25.2736, 110.29),
    "海口": (20.044, 110.1999),
    "北京": (39.9042, 116.4074),
    "天津": (39.3434, 117.3616),
    "石家庄": (38.0428, 114.5149),
    "唐山": (39.6305, 118.1802),
    "太原": (37.8706, 112.5489),
    "呼和浩特": (40.8414, 111.7519),
    "武汉": (30.5928, 114.3055),
    "宜昌": (30.6919, 111.2865),
    "长沙": (28.2282, 112.9388),
    "株洲": (27.8274, 113.134),
    "郑州": (34.7466, 113.6254),
    "洛阳": (34.6197, 112.454),
    "成都": (30.5728, 104.0668),
    "绵阳": (31.4675, 104.6796),
    "重庆": (29.563, 106.5516),
    "昆明": (25.0389, 102.7183),
    "贵阳": (26.647, 106.6302),
    "西安": (34.3416, 108.9398),
    "兰州": (36.0611, 103.8343),
    "乌鲁木齐": (43.8256, 87.6168),
    "银川": (38.4872, 106.2309),
    "西宁": (36.6171, 101.7782),
    "沈阳": (41.8057, 123.4315),
    "大连": (38.914, 121.6147),
    "长春": (43.8171, 125.3235),
    "哈尔滨": (45.8038, 126.535),
}


def coordinates_near(city: str, seed: str) -> tuple[float | None, float | None]:
    """A point within about 8 km of the city's centre, fixed by ``seed`` (a company name) so that
    the demo's random stream is not disturbed; ``(None, None)`` for a city without coordinates."""
    centre = CITY_COORDINATES.get(city)
    if centre is None:
        return None, None
    digest = zlib.crc32(seed.encode())
    north = ((digest & 0xFFFF) / 0xFFFF - 0.5) * 0.14
    east = ((digest >> 16) / 0xFFFF - 0.5) * 0.16
    return round(centre[0] + north, 6), round(centre[1] + east, 6)


@lru_cache(maxsize=128)
def _eight_digit_area(area_code: str) -> bool:
    """Whether local numbers under ``area_code`` have eight digits (most cities) or seven (e.g.
    Nanning 0771), by libphonenumber's plan — the rule the forms and the quality scan share — so
    the demo's landlines pass it."""
    return phones.phone_problem(f"{area_code}-62345678") is None
